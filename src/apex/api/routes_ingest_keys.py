"""Ingestion keys (PROTOCOL section 6): the caller's own; anyone else's is 404."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from apex.api.deps import CurrentPrincipal
from apex.auth.ingestion_keys import IngestionKeys
from apex.store.models import IngestionKey
from apex.timestamps import format_timestamp

router = APIRouter(prefix="/api/ingest/keys", tags=["ingestion"])


class KeyCreate(BaseModel):
    name: str


def key_view(record: IngestionKey) -> dict[str, Any]:
    """A key as listed: its first characters, never its hash."""
    used = record.last_used_at
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "created_at": format_timestamp(record.created_at),
        "last_used_at": format_timestamp(used) if used is not None else None,
    }


def _keys(request: Request) -> IngestionKeys:
    keys: IngestionKeys = request.app.state.ingestion_keys
    return keys


@router.post("", status_code=201)
async def create_key(
    body: KeyCreate, request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    issued = await _keys(request).create(principal.user_id, body.name)
    return {
        "id": issued.record.id,
        "name": issued.record.name,
        "key": issued.key,
        "created_at": format_timestamp(issued.record.created_at),
    }


@router.get("")
async def list_keys(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    return {"items": [key_view(k) for k in await _keys(request).list(principal.user_id)]}


@router.delete("/{key_id}", status_code=204)
async def delete_key(key_id: str, request: Request, principal: CurrentPrincipal) -> Response:
    await _keys(request).delete(principal.user_id, key_id)
    return Response(status_code=204)
