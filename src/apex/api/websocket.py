"""The `/ws` endpoint: one authenticated user per connection, all of that user's run events.

Each connection owns a bounded send queue fed without blocking by the event bus; one writer task
drains it to the socket through an `OrderedFeed` (per-run order, no gap, no duplicate). When the
queue is full the client is too slow: it is closed with 1013 and may reconnect and `resume`.
Neither the run nor any other connection ever waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket

from apex.api.errors import dependency_error
from apex.api.ws_auth import (
    INTERNAL_ERROR,
    POLICY_VIOLATION,
    SUBPROTOCOL,
    TOKEN_REVOKED,
    authenticate_handshake,
)
from apex.api.ws_frames import (
    FrameError,
    PingFrame,
    ResumeFrame,
    StopRunFrame,
    UserMessageFrame,
    parse_frame,
)
from apex.api.ws_hub import ConnectionHub
from apex.auth.principal import Principal
from apex.config import Settings
from apex.config.logging import bind_context, get_logger
from apex.errors import ApexError
from apex.execution.manager import RunManager
from apex.ids import new_id
from apex.realtime.bus import EventBus, Subscription
from apex.realtime.delivery import OrderedFeed
from apex.realtime.events import RunEvent, dumps
from apex.tasks import in_background
from apex.timestamps import format_timestamp

log = get_logger(__name__)
router = APIRouter()

MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013
CLOSE_TIMEOUT_S = 20.0


def _now() -> str:
    return format_timestamp(datetime.now(UTC))


def error_frame(code: str, message: str, ref: object = None) -> str:
    return dumps({"type": "error", "error": {"code": code, "message": message}, "ref": ref})


class LiveConnection:
    """One client connection: a reader, a writer, and the queue between the bus and the socket."""

    def __init__(
        self,
        websocket: WebSocket,
        principal: Principal,
        *,
        manager: RunManager,
        bus: EventBus,
        hub: ConnectionHub,
        settings: Settings,
    ) -> None:
        self.websocket = websocket
        self.principal = principal
        self.user_id = principal.user_id
        self.connection_id = new_id()
        self.manager = manager
        self.bus = bus
        self.hub = hub
        self.max_frame_bytes = settings.ws_max_frame_bytes
        self.feed = OrderedFeed(bus, principal.user_id)
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(settings.ws_send_queue_size)
        self.last_sent = asyncio.get_running_loop().time()
        self._ended = asyncio.Event()
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None

    async def serve(self) -> None:
        bind_context(user_id=self.user_id, connection_id=self.connection_id)
        try:
            self._subscription = await self.bus.subscribe(self.user_id, self._offer_event)
        except Exception as exc:
            log.warning("ws_subscribe_failed", error=repr(exc))
            await self.websocket.close(INTERNAL_ERROR, "event bus unavailable")
            return
        self.hub.add(self)
        if self.websocket.app.state.auth.is_revoked(self.principal):  # revoked while connecting
            self._begin_close(POLICY_VIOLATION, TOKEN_REVOKED)
        self._push(
            "frame",
            dumps(
                {
                    "type": "connection_ready",
                    "connection_id": self.connection_id,
                    "user_id": self.user_id,
                    "protocol": SUBPROTOCOL,
                    "server_time": _now(),
                }
            ),
        )
        self._writer = asyncio.create_task(self._write_loop())
        reader = asyncio.create_task(self._read_loop())
        try:
            await self._ended.wait()
        finally:
            self.hub.discard(self)
            await self._subscription.close()
            for task in (reader, self._writer):
                task.cancel()
            await asyncio.gather(reader, self._writer, return_exceptions=True)

    # the bus side: never blocks, never raises
    def _offer_event(self, event: RunEvent) -> None:
        self._push("event", event)

    def _push(self, kind: str, item: Any) -> None:
        if self._closing:
            return
        try:
            self.queue.put_nowait((kind, item))
        except asyncio.QueueFull:
            log.warning(
                "ws_slow_consumer",
                connection_id=self.connection_id,
                user_id=self.user_id,
                queued=self.queue.qsize(),
            )
            self._begin_close(TRY_AGAIN_LATER, "slow consumer: reconnect and resume")

    def send_frame(self, frame: str) -> None:
        """A frame from outside any run (an alert); never blocks."""
        self._push("frame", frame)

    def send_heartbeat(self) -> None:
        self.last_sent = asyncio.get_running_loop().time()
        self._push("frame", dumps({"type": "heartbeat", "server_time": _now()}))

    # closing
    def _begin_close(self, code: int, reason: str) -> None:
        if not self._closing:
            self._closing = True
            in_background(self.shut(code, reason))

    async def shut(self, code: int, reason: str) -> None:
        """Stop writing, send the close frame (bounded wait: the client may not be reading)."""
        self._closing = True
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, reason), CLOSE_TIMEOUT_S)
        self._ended.set()

    # writing
    async def _send(self, text: str) -> None:
        await self.websocket.send_text(text)
        self.last_sent = asyncio.get_running_loop().time()

    async def _write_loop(self) -> None:
        try:
            while True:
                kind, item = await self.queue.get()
                if kind == "frame":
                    await self._send(item)
                    continue
                batch = (
                    await self.feed.admit(item)
                    if kind == "event"
                    else await self.feed.resume(*item)
                )
                for event in batch:
                    await self._send(event.wire)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._closing:
                log.warning("ws_write_failed", error=repr(exc))
                self._closing = True
                self._ended.set()

    # reading
    async def _read_loop(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self._ended.set()
                return
            text, data = message.get("text"), message.get("bytes")
            size = len(text.encode()) if text is not None else len(data or b"")
            if size > self.max_frame_bytes:
                await self.shut(MESSAGE_TOO_BIG, "frame too large")
                return
            if text is None:
                self._push("frame", error_frame("invalid_frame", "Frames are JSON text."))
                continue
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        ref: object = None
        try:
            frame = parse_frame(text)
            ref = frame.client_message_id
            if isinstance(frame, UserMessageFrame):
                ticket = await self.manager.submit(
                    user_id=self.user_id,
                    text=frame.text,
                    thread_id=frame.thread_id,
                    request_id=new_id(),
                )
                self.feed.follow(ticket.run_id)
                self._push(
                    "frame",
                    dumps(
                        {
                            "type": "message_accepted",
                            "client_message_id": ref,
                            "thread_id": ticket.thread_id,
                            "run_id": ticket.run_id,
                        }
                    ),
                )
            elif isinstance(frame, StopRunFrame):
                await self.manager.cancel(self.user_id, frame.run_id)
            elif isinstance(frame, ResumeFrame):
                run = await self.manager.get(self.user_id, frame.run_id)
                self._push("resume", (frame.run_id, frame.after_seq, run.final_event))
            elif isinstance(frame, PingFrame):
                self._push("frame", dumps({"type": "pong", "server_time": _now()}))
        except FrameError as exc:
            self._push("frame", error_frame(exc.code, exc.message, exc.ref))
        except ApexError as exc:
            self._push("frame", error_frame(exc.code, exc.message, ref))
        except Exception as exc:
            unavailable = dependency_error(exc)
            if unavailable is not None:
                self._push("frame", error_frame(unavailable.code, unavailable.message, ref))
                return
            log.exception("ws_frame_failed", error=repr(exc))
            self._push(
                "frame", error_frame("internal_error", "Something went wrong on our side.", ref)
            )


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    principal = await authenticate_handshake(websocket)
    if principal is None:
        return
    state = websocket.app.state
    connection = LiveConnection(
        websocket,
        principal,
        manager=state.run_manager,
        bus=state.event_bus,
        hub=state.ws_hub,
        settings=state.settings,
    )
    await connection.serve()
