"""Threads and their messages: the caller's own only; anything else is 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from apex.api.deps import CurrentPrincipal
from apex.store.models import Message, Thread
from apex.store.repositories.messages import MessageRepository
from apex.store.repositories.threads import ThreadRepository
from apex.timestamps import format_timestamp

router = APIRouter(prefix="/api/threads", tags=["threads"])


class ThreadCreate(BaseModel):
    title: str | None = None


class ThreadUpdate(BaseModel):
    title: str


def thread_view(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.id,
        "title": thread.title,
        "created_at": format_timestamp(thread.created_at),
        "updated_at": format_timestamp(thread.updated_at),
        "message_count": thread.message_count,
    }


def message_view(message: Message) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": message.id,
        "role": message.role,
        "text": message.text,
        "run_id": message.run_id,
        "created_at": format_timestamp(message.created_at),
    }
    if message.report is not None:
        view["report"] = message.report
    return view


def _threads(request: Request) -> ThreadRepository:
    repository: ThreadRepository = request.app.state.threads
    return repository


def _messages(request: Request) -> MessageRepository:
    repository: MessageRepository = request.app.state.messages
    return repository


@router.get("")
async def list_threads(
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await _threads(request).list(principal.user_id, limit=limit, cursor=cursor)
    return {"items": [thread_view(t) for t in page.items], "next_cursor": page.next_cursor}


@router.post("", status_code=201)
async def create_thread(
    request: Request, principal: CurrentPrincipal, body: ThreadCreate | None = None
) -> dict[str, Any]:
    title = body.title if body is not None else None
    return thread_view(await _threads(request).create(principal.user_id, title))


@router.get("/{thread_id}")
async def get_thread(
    request: Request, principal: CurrentPrincipal, thread_id: str
) -> dict[str, Any]:
    return thread_view(await _threads(request).get(principal.user_id, thread_id))


@router.patch("/{thread_id}")
async def rename_thread(
    request: Request, principal: CurrentPrincipal, thread_id: str, body: ThreadUpdate
) -> dict[str, Any]:
    return thread_view(await _threads(request).rename(principal.user_id, thread_id, body.title))


@router.delete("/{thread_id}", status_code=204)
async def delete_thread(request: Request, principal: CurrentPrincipal, thread_id: str) -> Response:
    await _threads(request).delete(principal.user_id, thread_id)
    return Response(status_code=204)


@router.get("/{thread_id}/messages")
async def list_messages(
    request: Request,
    principal: CurrentPrincipal,
    thread_id: str,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    page = await _messages(request).list(principal.user_id, thread_id, limit=limit, cursor=cursor)
    return {"items": [message_view(m) for m in page.items], "next_cursor": page.next_cursor}
