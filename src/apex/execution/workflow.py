"""The Workflow protocol: what the run manager executes for each run.

A workflow receives a `WorkflowContext` (who, what was asked, the thread so far, an emitter and
the run's tool dispatcher) and returns a `WorkflowOutcome`. The run manager brackets it: it emits
the supervisor's `agent_started` before calling the workflow and the one final event after it
returns (or fails, times out, is cancelled), and stores the answer in the thread. A workflow
therefore never starts or ends the supervisor; it emits the supervisor's thinking, brackets its
sub-agents (most simply with `async with context.agent("triage", task) as triage:`) and calls
tools through the dispatcher so their events are automatic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from apex.errors import ApexError
from apex.execution.context import SUPERVISOR, UserExecutionContext
from apex.execution.dispatcher import ToolDispatcher, ToolResult
from apex.execution.emitter import RunEmitter


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """An earlier message of the thread, oldest first in `WorkflowContext.history`."""

    role: str
    text: str
    run_id: str | None
    created_at: datetime
    report: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class WorkflowOutcome:
    final_response: str
    report: Mapping[str, Any] = field(default_factory=dict)
    # one line for the final event's `result_summary` (empty: the start of `final_response`)
    summary: str = ""


class AgentScope:
    """One sub-agent's bracket: think and call tools under its name. `ctx` is the sub-agent's
    child context (same user, thread, run and request) for scoped queries."""

    __slots__ = ("context", "name", "ctx", "result_summary")

    def __init__(self, context: WorkflowContext, name: str) -> None:
        self.context = context
        self.name = name
        self.ctx = context.ctx.child(name)
        self.result_summary = "done"

    async def think(
        self, thought: str, *, step: int | None = None, total_steps: int | None = None
    ) -> None:
        await self.context.events.agent_thinking(
            self.name, thought, step=step, total_steps=total_steps
        )

    async def call(self, tool_name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        return await self.context.tools.call(self.name, tool_name, arguments)


@dataclass(frozen=True, slots=True)
class WorkflowContext:
    ctx: UserExecutionContext
    text: str
    history: Sequence[ThreadMessage]
    events: RunEmitter
    tools: ToolDispatcher

    async def think(
        self, thought: str, *, step: int | None = None, total_steps: int | None = None
    ) -> None:
        """The supervisor's thinking."""
        await self.events.agent_thinking(SUPERVISOR, thought, step=step, total_steps=total_steps)

    async def call(self, tool_name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """A tool call made by the supervisor itself."""
        return await self.tools.call(SUPERVISOR, tool_name, arguments)

    @asynccontextmanager
    async def agent(self, name: str, task: str) -> AsyncIterator[AgentScope]:
        """`agent_started` on entry; `agent_completed` (with `scope.result_summary`) on a clean
        exit, `agent_error` when the body raises (the exception propagates)."""
        await self.events.agent_started(name, task)
        scope = AgentScope(self, name)
        try:
            yield scope
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code = exc.code if isinstance(exc, ApexError) else "agent_failed"
            message = (
                exc.message
                if isinstance(exc, ApexError)
                else (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            )
            await self.events.agent_error(name, code, message)
            raise
        await self.events.agent_completed(name, scope.result_summary)


class Workflow(Protocol):
    async def run(self, context: WorkflowContext) -> WorkflowOutcome:
        """Answer `context.text`; raise to fail the run (an ApexError's code and message are
        shown to the user, anything else becomes `workflow_error`)."""
        ...
