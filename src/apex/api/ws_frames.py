"""Client → server WebSocket frames (PROTOCOL.md section 2), parsed into typed commands.

Anything that is not a well-formed frame raises `FrameError`, which the connection answers with
an `error` frame and stays open. Unknown extra fields are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

TEXT_ALIASES = ("text", "content", "message")


class FrameError(Exception):
    def __init__(self, code: str, message: str, ref: object = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref


@dataclass(frozen=True, slots=True)
class UserMessageFrame:
    text: object
    thread_id: str | None
    client_message_id: object


@dataclass(frozen=True, slots=True)
class StopRunFrame:
    run_id: str
    client_message_id: object


@dataclass(frozen=True, slots=True)
class ResumeFrame:
    run_id: str
    after_seq: int
    client_message_id: object


@dataclass(frozen=True, slots=True)
class PingFrame:
    client_message_id: object


ClientFrame = UserMessageFrame | StopRunFrame | ResumeFrame | PingFrame


def _reference(data: dict[str, Any]) -> object:
    ref = data.get("client_message_id")
    return ref if isinstance(ref, (str, int)) and not isinstance(ref, bool) else None


def _required_id(data: dict[str, Any], name: str, ref: object) -> str:
    value = data.get(name)
    if value is None:
        raise FrameError("missing_field", f"`{name}` is required.", ref)
    if not isinstance(value, str) or not value:
        raise FrameError("invalid_field", f"`{name}` must be a non-empty string.", ref)
    return value


def _user_message(data: dict[str, Any], ref: object) -> UserMessageFrame:
    text = next((data[name] for name in TEXT_ALIASES if data.get(name) is not None), None)
    if text is None:
        raise FrameError("missing_field", "`text` is required.", ref)
    thread_id = data.get("thread_id")
    if thread_id is not None and (not isinstance(thread_id, str) or not thread_id):
        raise FrameError("invalid_field", "`thread_id` must be a non-empty string.", ref)
    return UserMessageFrame(text=text, thread_id=thread_id, client_message_id=ref)


def _resume(data: dict[str, Any], ref: object) -> ResumeFrame:
    run_id = _required_id(data, "run_id", ref)
    after_seq = data.get("after_seq", 0)
    if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
        raise FrameError("invalid_field", "`after_seq` must be a non-negative integer.", ref)
    return ResumeFrame(run_id=run_id, after_seq=after_seq, client_message_id=ref)


def parse_frame(text: str) -> ClientFrame:
    try:
        data = json.loads(text)
    except ValueError:
        raise FrameError("invalid_json", "The frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise FrameError("invalid_frame", "A frame is a JSON object with a `type`.")
    ref = _reference(data)
    kind = data.get("type")
    if kind is None:
        raise FrameError("missing_field", "`type` is required.", ref)
    if kind == "user_message":
        return _user_message(data, ref)
    if kind in ("stop_run", "stop_agent"):
        return StopRunFrame(run_id=_required_id(data, "run_id", ref), client_message_id=ref)
    if kind == "resume":
        return _resume(data, ref)
    if kind == "ping":
        return PingFrame(client_message_id=ref)
    shown = kind if isinstance(kind, str) else type(kind).__name__
    raise FrameError("unknown_type", f"Unknown frame type {shown[:64]!r}.", ref)
