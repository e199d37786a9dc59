"""The one run-event envelope (PROTOCOL.md section 3) and its wire form.

An emitter builds an `EventDraft` (everything but `seq`); the bus assigns `seq` and turns the
draft into a `RunEvent`. The wire JSON is produced once per event and shared by every connection
it fans out to, so fan-out never re-serializes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from apex.ids import new_id
from apex.timestamps import format_timestamp


class EventType(StrEnum):
    AGENT_STARTED = "agent_started"
    AGENT_THINKING = "agent_thinking"
    TOOL_EXECUTING = "tool_executing"
    TOOL_COMPLETED = "tool_completed"
    AGENT_COMPLETED = "agent_completed"
    AGENT_ERROR = "agent_error"
    AGENT_STOPPED = "agent_stopped"


def _jsonable(value: object) -> object:
    """Values a report or tool result may hold that json cannot encode by itself."""
    if isinstance(value, datetime):
        return format_timestamp(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps(value: object) -> str:
    """Compact JSON, UTF-8 kept as is; unknown types degrade to strings instead of failing a run."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_jsonable)


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before the bus has numbered it."""

    type: EventType
    run_id: str
    thread_id: str
    user_id: str
    agent_name: str
    payload: Mapping[str, Any]
    event_id: str = field(default_factory=new_id)
    timestamp: str = field(default_factory=lambda: format_timestamp(datetime.now(UTC)))

    @property
    def final(self) -> bool:
        return self.payload.get("final") is True

    def wire_parts(self) -> tuple[str, str]:
        """The wire JSON split around the `seq` value, so a bus can number it atomically."""
        head = dumps({"type": self.type.value, "event_id": self.event_id})
        tail = dumps(
            {
                "run_id": self.run_id,
                "thread_id": self.thread_id,
                "user_id": self.user_id,
                "agent_name": self.agent_name,
                "timestamp": self.timestamp,
                "payload": self.payload,
            }
        )
        return head[:-1] + ',"seq":', "," + tail[1:]

    def numbered(self, seq: int, parts: tuple[str, str] | None = None) -> RunEvent:
        head, tail = parts or self.wire_parts()
        return RunEvent(
            type=self.type,
            event_id=self.event_id,
            seq=seq,
            run_id=self.run_id,
            thread_id=self.thread_id,
            user_id=self.user_id,
            agent_name=self.agent_name,
            timestamp=self.timestamp,
            payload=self.payload,
            wire=f"{head}{seq}{tail}",
        )


@dataclass(frozen=True, slots=True)
class RunEvent:
    """A numbered event exactly as clients receive it; `wire` is its JSON text."""

    type: EventType
    event_id: str
    seq: int
    run_id: str
    thread_id: str
    user_id: str
    agent_name: str
    timestamp: str
    payload: Mapping[str, Any]
    wire: str = field(repr=False, compare=False)

    @property
    def final(self) -> bool:
        return self.payload.get("final") is True

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.wire)
        return result

    @classmethod
    def from_wire(cls, wire: str) -> RunEvent:
        data = json.loads(wire)
        return cls(
            type=EventType(data["type"]),
            event_id=data["event_id"],
            seq=int(data["seq"]),
            run_id=data["run_id"],
            thread_id=data["thread_id"],
            user_id=data["user_id"],
            agent_name=data["agent_name"],
            timestamp=data["timestamp"],
            payload=data["payload"],
            wire=wire,
        )
