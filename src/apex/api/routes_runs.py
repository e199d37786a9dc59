"""Runs over HTTP: start, read, cancel, and follow one run's events as Server-Sent Events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from apex.api.deps import CurrentPrincipal
from apex.api.sse import RunEventStream
from apex.errors import BadRequest
from apex.execution.manager import RunManager
from apex.execution.state import RunState
from apex.store.models import Run
from apex.timestamps import format_timestamp

router = APIRouter(prefix="/api/runs", tags=["runs"])


class RunCreate(BaseModel):
    """`text`, or its aliases `content` and `message`; unknown fields are ignored."""

    text: Any = None
    content: Any = None
    message: Any = None
    thread_id: str | None = None

    def question(self) -> Any:
        return next((v for v in (self.text, self.content, self.message) if v is not None), None)


def run_view(run: Run) -> dict[str, Any]:
    view: dict[str, Any] = {
        "run_id": run.id,
        "thread_id": run.thread_id,
        "state": run.state,
        "created_at": format_timestamp(run.created_at),
        "started_at": format_timestamp(run.started_at) if run.started_at else None,
        "finished_at": format_timestamp(run.finished_at) if run.finished_at else None,
    }
    if run.error_code:
        view["error"] = {"code": run.error_code, "message": run.error_message or ""}
    if run.final_response is not None:
        view["final_response"] = run.final_response
    if run.report is not None:
        view["report"] = run.report
    return view


def _manager(request: Request) -> RunManager:
    manager: RunManager = request.app.state.run_manager
    return manager


@router.post("", status_code=202)
async def start_run(
    request: Request, principal: CurrentPrincipal, body: RunCreate
) -> dict[str, Any]:
    ticket = await _manager(request).submit(
        user_id=principal.user_id,
        text=body.question(),
        thread_id=body.thread_id,
        request_id=request.scope.get("state", {}).get("request_id") or "http",
    )
    return {"run_id": ticket.run_id, "thread_id": ticket.thread_id, "state": ticket.state.value}


@router.get("/{run_id}")
async def get_run(request: Request, principal: CurrentPrincipal, run_id: str) -> dict[str, Any]:
    return run_view(await _manager(request).get(principal.user_id, run_id))


@router.post("/{run_id}/cancel", status_code=202)
async def cancel_run(request: Request, principal: CurrentPrincipal, run_id: str) -> dict[str, Any]:
    state = await _manager(request).cancel(principal.user_id, run_id)
    return {"run_id": run_id, "state": state.value}


def _after_seq(last_event_id: str | None) -> int:
    if last_event_id is None or not last_event_id.strip():
        return 0
    value = last_event_id.strip()
    if not value.isdigit() or len(value) > 12:
        raise BadRequest(
            "Last-Event-ID must be the `seq` of a received event.", code="invalid_last_event_id"
        )
    return int(value)


@router.get("/{run_id}/events")
async def run_events(
    request: Request,
    principal: CurrentPrincipal,
    run_id: str,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    manager = _manager(request)
    await manager.get(principal.user_id, run_id)
    settings = request.app.state.settings

    async def run_status() -> tuple[bool, str | None]:
        run = await manager.get(principal.user_id, run_id)
        return RunState(run.state).terminal, run.final_event

    stream = RunEventStream(
        request.app.state.event_bus,
        user_id=principal.user_id,
        run_id=run_id,
        after_seq=_after_seq(last_event_id),
        queue_size=settings.ws_send_queue_size,
        keepalive_s=settings.ws_heartbeat_s,
        run_status=run_status,
    )
    return StreamingResponse(
        stream.frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
