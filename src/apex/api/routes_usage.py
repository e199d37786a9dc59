"""Usage endpoints: uploads (streamed, size-limited), demo data, summary, erase, prices.

The tenant of every call is the authenticated caller: rows are stored under the uploader's
user id whatever the file says, and every read and erase is scoped to it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.types import Message

from apex.analytics.importers.base import FORMATS
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger import SqlLedger
from apex.analytics.periods import ALL_TIME
from apex.analytics.pricing import KINDS, TIER_RANK, normalize_provider, price_from_dict
from apex.analytics.results import UsagePeriod
from apex.analytics.uploads import UploadStatus
from apex.api.deps import CurrentPrincipal
from apex.config.logging import get_logger
from apex.errors import BadRequest, InvalidJson, NotFound, PayloadTooLarge

log = get_logger(__name__)
router = APIRouter(prefix="/api/usage", tags=["usage"])

MULTIPART_OVERHEAD = 64 * 1024


def _importer(request: Request) -> UsageImporter:
    importer: UsageImporter = request.app.state.usage_importer
    return importer


def _ledger(request: Request) -> SqlLedger:
    ledger: SqlLedger = request.app.state.ledger
    return ledger


def _report(status: UploadStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True)


def _limited(request: Request, limit: int) -> Request:
    """The same request, but reading past `limit` body bytes raises 413 (chunked bodies too)."""
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(
                    f"The upload is larger than the limit of {limit - MULTIPART_OVERHEAD} bytes.",
                    details={"limit_bytes": limit - MULTIPART_OVERHEAD},
                )
        return message

    return Request(request.scope, receive)


async def _read_upload(request: Request) -> tuple[UploadFile, str | None, bool | None]:
    settings = request.app.state.settings
    limit = settings.upload_max_bytes + MULTIPART_OVERHEAD
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"The upload is larger than the limit of {settings.upload_max_bytes} bytes.",
            details={"limit_bytes": settings.upload_max_bytes},
        )
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest(
            "Send the file as multipart/form-data in a field named `file`.",
            code="multipart_required",
        )
    form = await _limited(request, limit).form(max_files=1, max_fields=20)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise BadRequest("Send the file in a multipart field named `file`.", code="file_missing")
    fmt = form.get("format")
    fmt = fmt.strip().lower() if isinstance(fmt, str) and fmt.strip() else None
    if fmt is not None and fmt not in FORMATS:
        await upload.close()
        raise BadRequest(
            f"format must be one of {', '.join(FORMATS)}.",
            code="invalid_format",
            details={"format": fmt, "accepted": list(FORMATS)},
        )
    wait = form.get("wait")
    if isinstance(wait, str) and wait.strip():
        return upload, fmt, wait.strip().lower() not in ("false", "0", "no")
    return upload, fmt, None


async def _run_upload(
    importer: UsageImporter,
    tenant_id: str,
    upload: UploadFile,
    fmt: str | None,
    upload_id: str | None = None,
) -> UploadStatus:
    try:
        return await importer.upload(
            tenant_id,
            upload.file,
            filename=upload.filename or "upload",
            fmt=fmt,
            bytes_total=upload.size,
            upload_id=upload_id,
        )
    finally:
        await upload.close()


# The upload and price bodies are read by hand (a size limit while streaming; decimal prices
# checked by the catalog's own rules), so their shapes are declared for the OpenAPI document.
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "format": {"type": "string", "enum": list(FORMATS)},
                        "wait": {"type": "boolean"},
                    },
                }
            }
        },
    }
}
_PRICE = {"type": "number", "minimum": 0, "description": "USD per million tokens"}
_PRICE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["input", "output"],
                    "properties": {
                        "input": _PRICE,
                        "output": _PRICE,
                        "cached_input": _PRICE,
                        "cache_write": _PRICE,
                        "reasoning": _PRICE,
                        "tiers": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["above_input_tokens", "input", "output"],
                                "properties": {
                                    "above_input_tokens": {"type": "integer", "minimum": 1},
                                    "input": _PRICE,
                                    "output": _PRICE,
                                    "cached_input": _PRICE,
                                    "cache_write": _PRICE,
                                },
                            },
                        },
                        "batch_discount": {"type": "number", "minimum": 0, "maximum": 1},
                        "provider": {"type": "string"},
                        "tier": {"type": "string", "enum": list(TIER_RANK)},
                        "kind": {"type": "string", "enum": list(KINDS)},
                    },
                }
            }
        },
    }
}


@router.post("/uploads", openapi_extra=_UPLOAD_BODY)
async def upload_usage(
    request: Request, principal: CurrentPrincipal, wait: bool = True
) -> JSONResponse:
    """Import a usage file; `wait=false` (query or form field) answers 202 at once and the
    import goes on; `GET /api/usage/uploads/{id}` follows it."""
    upload, fmt, form_wait = await _read_upload(request)
    wait = wait if form_wait is None else form_wait
    importer = _importer(request)
    if wait:
        status = await _run_upload(importer, principal.user_id, upload, fmt)
        return JSONResponse(_report(status))
    status = await asyncio.to_thread(
        importer.start,
        principal.user_id,
        filename=upload.filename or "upload",
        fmt=fmt or "auto",
        bytes_total=upload.size,
    )
    task = asyncio.create_task(
        _background(importer, principal.user_id, upload, fmt, status.upload_id)
    )
    request.app.state.usage_tasks.add(task)
    task.add_done_callback(request.app.state.usage_tasks.discard)
    return JSONResponse(_report(status), status_code=202)


async def _background(
    importer: UsageImporter, tenant_id: str, upload: UploadFile, fmt: str | None, upload_id: str
) -> None:
    try:
        await _run_upload(importer, tenant_id, upload, fmt, upload_id)
    except BadRequest:
        return  # recorded as a failed upload; the client reads it from GET /uploads/{id}
    except Exception as exc:
        log.exception("usage_upload_failed", upload_id=upload_id, error=repr(exc))


@router.get("/uploads")
async def list_uploads(
    request: Request, principal: CurrentPrincipal, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    uploads = await asyncio.to_thread(_ledger(request).list_uploads, principal.user_id, limit)
    return {"items": [_report(status) for status in uploads]}


@router.get("/uploads/{upload_id}")
async def get_upload(
    upload_id: str, request: Request, principal: CurrentPrincipal
) -> dict[str, Any]:
    status = await asyncio.to_thread(_importer(request).status, principal.user_id, upload_id)
    if status is None:
        raise NotFound("No such upload.", code="upload_not_found")
    return _report(status)


class DemoLoadRequest(BaseModel):
    rows: int | None = Field(default=None, ge=1)
    seed: int = Field(default=42, ge=0, le=2**32 - 1)


@router.post("/demo")
async def load_demo(
    request: Request, principal: CurrentPrincipal, body: DemoLoadRequest | None = None
) -> dict[str, Any]:
    """Load the generated demo workload for the caller (replacing earlier demo rows)."""
    settings = request.app.state.settings
    body = body or DemoLoadRequest()
    rows = body.rows or settings.demo_default_rows
    if rows > settings.demo_max_rows:
        raise BadRequest(
            f"rows: at most {settings.demo_max_rows}",
            code="too_many_rows",
            details={"max_rows": settings.demo_max_rows},
        )
    status = await _importer(request).load_demo(principal.user_id, rows=rows, seed=body.seed)
    return _report(status)


def _parse_bound(value: str | None, name: str, *, end: bool) -> datetime | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{name}: expected an ISO 8601 date or date-time, got {value!r}", code="invalid_period"
        ) from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/summary")
async def usage_summary(
    request: Request,
    principal: CurrentPrincipal,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Totals and breakdowns; `to` is exclusive, a bare date in `to` includes that whole day."""
    low = _parse_bound(start, "from", end=False)
    high = _parse_bound(end, "to", end=True)
    if low and high and high <= low:
        raise BadRequest("`to` must be after `from`.", code="invalid_period")
    period = (
        None
        if low is None and high is None
        else UsagePeriod(start=low or ALL_TIME.start, end=high or ALL_TIME.end)
    )
    summary = await _ledger(request).summary(principal.user_id, period)
    return summary.model_dump(mode="json", by_alias=True)


@router.delete("")
async def erase_usage(request: Request, principal: CurrentPrincipal) -> dict[str, int]:
    deleted = await asyncio.to_thread(_ledger(request).delete_usage, principal.user_id)
    return {"deleted_rows": deleted}


def _price_json(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        key: float(value)
        if isinstance(value, Decimal)
        else [_price_json(item) for item in value]
        if key == "tiers"
        else value
        for key, value in entry.items()
    }


@router.get("/prices")
async def list_prices(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    catalog = await asyncio.to_thread(_importer(request).catalog_for, principal.user_id)
    return {
        "version": catalog.version,
        "as_of": catalog.as_of,
        "currency": "USD",
        "unit": "per 1,000,000 tokens",
        "models": [_price_json(price.to_dict()) for price in catalog.models],
    }


@router.put("/prices/{model:path}", openapi_extra=_PRICE_BODY)
async def set_price(model: str, request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """Your own price for a model (per million tokens); your catalog-priced rows are re-priced."""
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        raise InvalidJson() from None
    if not isinstance(body, dict):
        raise BadRequest(
            "Expected a JSON object with input and output prices.", code="invalid_price"
        )
    price = price_from_dict({**body, "id": model}, source="user")
    repriced = await asyncio.to_thread(_importer(request).set_price, principal.user_id, price)
    return {"price": _price_json(price.to_dict()), "repriced_rows": repriced}


@router.delete("/prices/{model:path}", status_code=204)
async def delete_price(
    model: str, request: Request, principal: CurrentPrincipal, provider: str = ""
) -> Response:
    found = await asyncio.to_thread(
        _importer(request).remove_price, principal.user_id, normalize_provider(provider), model
    )
    if not found:
        raise NotFound("You have no price override for that model.", code="price_not_found")
    return Response(status_code=204)
