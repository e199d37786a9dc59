"""Event emission bound to one run, enforcing the ordering rules of PROTOCOL.md section 3.

The emitter tracks what is open (the supervisor, sub-agents, tool calls) and refuses events that
would break the order. Only the run manager calls the `finish_*` methods: they close whatever is
still open (each open tool call gets its `tool_completed`, each open sub-agent its `agent_error`)
and then emit the run's one final event, after which the emitter is sealed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apex.execution.context import SUPERVISOR, UserExecutionContext
from apex.realtime.bus import EventBus, NoFreeSlot, RunEndedError
from apex.realtime.events import EventDraft, EventType, RunEvent

TASK_MAX_CHARS = 1_000
SUMMARY_MAX_CHARS = 200
_AGENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class EventOrderError(RuntimeError):
    """A workflow asked for an event the protocol's ordering forbids (a bug in the workflow)."""


def summarize(text: str, limit: int = SUMMARY_MAX_CHARS) -> str:
    """One line, at most `limit` characters, for `result_summary` fields."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(slots=True)
class OpenToolCall:
    agent_name: str
    tool_name: str
    started_at: float


@dataclass(slots=True)
class RunBrackets:
    """What a run's event stream has opened and not yet closed."""

    started: bool = False
    ended: bool = False
    agents: dict[str, None] = field(default_factory=dict)
    tools: dict[str, OpenToolCall] = field(default_factory=dict)

    def observe(
        self, kind: EventType, agent_name: str, payload: Mapping[str, Any], at: float
    ) -> None:
        if payload.get("final") is True:
            self.ended = True
        elif kind is EventType.AGENT_STARTED:
            if agent_name == SUPERVISOR:
                self.started = True
            else:
                self.agents[agent_name] = None
        elif kind in (EventType.AGENT_COMPLETED, EventType.AGENT_ERROR):
            self.agents.pop(agent_name, None)
        elif kind is EventType.TOOL_EXECUTING:
            self.tools[str(payload["tool_call_id"])] = OpenToolCall(
                agent_name, str(payload["tool_name"]), at
            )
        elif kind is EventType.TOOL_COMPLETED:
            self.tools.pop(str(payload["tool_call_id"]), None)

    @classmethod
    def replayed(cls, events: Iterable[RunEvent]) -> RunBrackets:
        """Rebuild the open brackets of a run from its stored log (to end a run another process
        abandoned). A log that no longer starts at seq 1 was trimmed: its start was emitted."""
        brackets = cls()
        for event in events:
            if event.seq > 1:
                brackets.started = True
            at = datetime.fromisoformat(event.timestamp.replace("Z", "+00:00")).timestamp()
            brackets.observe(event.type, event.agent_name, event.payload, at)
        return brackets


SeqRecorder = Callable[[str, int], Awaitable[None]]
"""Keeps a run's `seq` high-water mark durably (`run_id`, `seq`); never raises."""

BeforeFinal = Callable[[], Awaitable[None]]
"""Called once, just before a run's final event is published; never raises."""


class RunEmitter:
    """`last_seq` is the highest `seq` this run is known to have reached: the bus numbers every
    event above it, so numbering survives a bus that lost the run's state. A run's events are
    published one at a time (parallel tool calls included), so that floor is always current.

    Once `record_seq` is set (the bus may have lost what it stored), every event's `seq` is also
    kept durably after it is published: should this process die too, whoever ends the run
    numbers its final event above it."""

    def __init__(
        self,
        ctx: UserExecutionContext,
        bus: EventBus,
        *,
        task: str,
        brackets: RunBrackets | None = None,
        last_seq: int = 0,
    ) -> None:
        self.ctx = ctx
        self.bus = bus
        self.task = task
        self.brackets = brackets or RunBrackets()
        self.last_seq = last_seq
        self.record_seq: SeqRecorder | None = None
        self.before_final: BeforeFinal | None = None
        self._publishing = asyncio.Lock()

    def _is_open(self, agent_name: str) -> bool:
        return (agent_name == SUPERVISOR and self.brackets.started) or (
            agent_name in self.brackets.agents
        )

    async def _emit(
        self,
        kind: EventType,
        agent_name: str,
        payload: dict[str, Any],
        *,
        slot_limit: int | None = None,
    ) -> RunEvent:
        draft = EventDraft(
            type=kind,
            run_id=self.ctx.run_id,
            thread_id=self.ctx.thread_id,
            user_id=self.ctx.user_id,
            agent_name=agent_name,
            payload=payload,
        )
        async with self._publishing:
            if self.brackets.ended:
                raise RunEndedError(f"Run {self.ctx.run_id} has already ended.")
            if payload.get("final") is True and self.before_final is not None:
                hook, self.before_final = self.before_final, None
                await hook()
            before = self.brackets.started
            self.brackets.observe(kind, agent_name, payload, time.time())
            try:
                event = await self.bus.publish(
                    draft, floor=self.last_seq, slot_limit=slot_limit, first=not before
                )
            except NoFreeSlot:
                self.brackets.started = before
                raise
            self.last_seq = max(self.last_seq, event.seq)
            if self.record_seq is not None:
                await self.record_seq(self.ctx.run_id, self.last_seq)
        return event

    def _require_open(self, agent_name: str) -> None:
        if not self._is_open(agent_name):
            raise EventOrderError(f"Agent {agent_name!r} has not started (or has finished).")

    # what a workflow emits
    async def agent_started(self, agent_name: str, task: str) -> RunEvent:
        if agent_name == SUPERVISOR:
            raise EventOrderError("The run manager starts and ends the supervisor.")
        if not _AGENT_NAME.match(agent_name):
            raise EventOrderError(f"Agent names are lowercase identifiers, got {agent_name!r}.")
        if agent_name in self.brackets.agents:
            raise EventOrderError(f"Agent {agent_name!r} is already running.")
        return await self._emit(
            EventType.AGENT_STARTED, agent_name, {"task": summarize(task, TASK_MAX_CHARS)}
        )

    async def agent_thinking(
        self,
        agent_name: str,
        thought: str,
        *,
        step: int | None = None,
        total_steps: int | None = None,
    ) -> RunEvent:
        self._require_open(agent_name)
        payload: dict[str, Any] = {"thought": thought}
        if step is not None:
            payload["step"] = step
        if total_steps is not None:
            payload["total_steps"] = total_steps
        return await self._emit(EventType.AGENT_THINKING, agent_name, payload)

    async def agent_completed(self, agent_name: str, result_summary: str) -> RunEvent:
        self._require_sub_agent(agent_name)
        return await self._emit(
            EventType.AGENT_COMPLETED, agent_name, {"result_summary": summarize(result_summary)}
        )

    async def agent_error(self, agent_name: str, code: str, message: str) -> RunEvent:
        self._require_sub_agent(agent_name)
        return await self._emit(
            EventType.AGENT_ERROR, agent_name, {"error": {"code": code, "message": message}}
        )

    def _require_sub_agent(self, agent_name: str) -> None:
        if agent_name == SUPERVISOR:
            raise EventOrderError("The run manager starts and ends the supervisor.")
        self._require_open(agent_name)

    # what the tool dispatcher emits
    async def tool_executing(
        self, agent_name: str, tool_call_id: str, tool_name: str, arguments: Mapping[str, Any]
    ) -> RunEvent:
        self._require_open(agent_name)
        return await self._emit(
            EventType.TOOL_EXECUTING,
            agent_name,
            {"tool_call_id": tool_call_id, "tool_name": tool_name, "arguments": dict(arguments)},
        )

    async def tool_completed(
        self,
        tool_call_id: str,
        *,
        status: str,
        duration_ms: float,
        result_summary: str,
        result: Any = None,
        include_result: bool = False,
    ) -> RunEvent:
        call = self.brackets.tools.get(tool_call_id)
        if call is None:
            raise EventOrderError(f"Tool call {tool_call_id!r} is not executing.")
        payload: dict[str, Any] = {
            "tool_call_id": tool_call_id,
            "tool_name": call.tool_name,
            "status": status,
            "duration_ms": round(duration_ms, 3),
            "result_summary": summarize(result_summary),
        }
        if include_result:
            payload["result"] = result
        return await self._emit(EventType.TOOL_COMPLETED, call.agent_name, payload)

    # what only the run manager emits
    async def start_supervisor(self, slot_limit: int | None = None) -> RunEvent:
        """The run's first event; with `slot_limit`, also its claim of a shared run slot
        (NoFreeSlot, and nothing emitted, when the user has none free)."""
        if self.brackets.started:
            raise EventOrderError("The supervisor has already started.")
        return await self._emit(
            EventType.AGENT_STARTED,
            SUPERVISOR,
            {"task": summarize(self.task, TASK_MAX_CHARS)},
            slot_limit=slot_limit,
        )

    async def _close_open(self, *, tool_status: str, code: str, message: str) -> None:
        if not self.brackets.started:
            await self.start_supervisor()
        now = time.time()
        for call_id, call in list(self.brackets.tools.items()):
            await self.tool_completed(
                call_id,
                status=tool_status,
                duration_ms=(now - call.started_at) * 1000,
                result_summary=message,
            )
        for agent_name in reversed(list(self.brackets.agents)):
            await self.agent_error(agent_name, code, message)

    async def finish_completed(
        self, final_response: str, report: Mapping[str, Any], *, summary: str = ""
    ) -> RunEvent:
        """The final event; `summary` (else the start of the final response) is its one-line
        `result_summary`."""
        await self._close_open(
            tool_status="error",
            code="agent_unfinished",
            message="The run finished before this step did.",
        )
        return await self._emit(
            EventType.AGENT_COMPLETED,
            SUPERVISOR,
            {
                "result_summary": summarize(summary or final_response),
                "final": True,
                "state": "completed",
                "final_response": final_response,
                "report": dict(report),
            },
        )

    async def finish_error(self, state: str, code: str, message: str) -> RunEvent:
        await self._close_open(
            tool_status="timeout" if state == "timeout" else "error", code=code, message=message
        )
        return await self._emit(
            EventType.AGENT_ERROR,
            SUPERVISOR,
            {"error": {"code": code, "message": message}, "final": True, "state": state},
        )

    async def finish_stopped(self) -> RunEvent:
        await self._close_open(
            tool_status="error", code="run_cancelled", message="The run was stopped."
        )
        return await self._emit(
            EventType.AGENT_STOPPED, SUPERVISOR, {"final": True, "state": "cancelled"}
        )
