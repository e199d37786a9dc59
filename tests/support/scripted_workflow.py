"""A workflow driven by a script, to put the run machinery through every path.

It is a real `Workflow`: it registers real tools on the run's dispatcher and emits through the
run's emitter, so every event the tests see went through the same code as a product run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apex.execution.workflow import WorkflowContext, WorkflowOutcome


@dataclass(frozen=True)
class Think:
    thought: str
    agent: str | None = None


@dataclass(frozen=True)
class Call:
    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    agent: str | None = None


@dataclass(frozen=True)
class Agent:
    name: str
    steps: Sequence[Any]
    summary: str = "done"


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Fail:
    error: Exception


@dataclass(frozen=True)
class Burst:
    """`count` thinking events of about `size` characters, as fast as the bus takes them, or
    with a pause of `pace_s` after each."""

    count: int
    size: int = 64
    pace_s: float = 0.0


@dataclass(frozen=True)
class Signal:
    """Set an event the test waits on (the run reached this point)."""

    event: asyncio.Event


ToolFn = Callable[..., Awaitable[Any]]


class ScriptedWorkflow:
    def __init__(
        self,
        steps: Sequence[Any],
        *,
        tools: Mapping[str, ToolFn] | None = None,
        tool_timeouts: Mapping[str, float] | None = None,
        final_response: str = "All done.",
        report: Mapping[str, Any] | None = None,
        script_for: Callable[[str], Sequence[Any]] | None = None,
    ) -> None:
        self.steps = steps
        self.tools = dict(tools or {})
        self.tool_timeouts = dict(tool_timeouts or {})
        self.final_response = final_response
        self.report = dict(report or {"markdown": "report"})
        self.script_for = script_for
        self.contexts: list[WorkflowContext] = []
        self.tool_results: list[Any] = []

    async def run(self, context: WorkflowContext) -> WorkflowOutcome:
        self.contexts.append(context)
        for name, function in self.tools.items():
            context.tools.register(name, function, timeout_s=self.tool_timeouts.get(name))
        steps = self.script_for(context.text) if self.script_for else self.steps
        await self._steps(context, steps, None)
        return WorkflowOutcome(
            final_response=f"{self.final_response} ({context.text})", report=self.report
        )

    async def _steps(
        self, context: WorkflowContext, steps: Sequence[Any], agent: str | None
    ) -> None:
        for step in steps:
            await self._step(context, step, agent)

    async def _step(self, context: WorkflowContext, step: Any, agent: str | None) -> None:
        name = getattr(step, "agent", None) or agent
        if isinstance(step, Think):
            if name is None:
                await context.think(step.thought)
            else:
                await context.events.agent_thinking(name, step.thought)
        elif isinstance(step, Call):
            result = (
                await context.call(step.tool, step.arguments)
                if name is None
                else await context.tools.call(name, step.tool, step.arguments)
            )
            self.tool_results.append(result)
        elif isinstance(step, Agent):
            async with context.agent(step.name, f"{step.name} task") as scope:
                await self._steps(context, step.steps, step.name)
                scope.result_summary = step.summary
        elif isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Fail):
            raise step.error
        elif isinstance(step, Burst):
            padding = "x" * step.size
            for index in range(step.count):
                await context.think(f"{index} {padding}")
                if step.pace_s:
                    await asyncio.sleep(step.pace_s)
        elif isinstance(step, Signal):
            step.event.set()
        else:
            raise TypeError(f"unknown step {step!r}")


async def echo_tool(**arguments: Any) -> dict[str, Any]:
    return {"echo": arguments}


async def failing_tool(**_arguments: Any) -> None:
    raise RuntimeError("the tool broke")


def sleeping_tool(seconds: float, reached: asyncio.Event | None = None) -> ToolFn:
    async def sleep(**_arguments: Any) -> str:
        if reached is not None:
            reached.set()
        await asyncio.sleep(seconds)
        return "slept"

    return sleep


class StoppableTool:
    """A tool that runs until cancelled, and records that it was (re-armed by `rearm` for the
    next run)."""

    def __init__(self) -> None:
        self.rearm()

    def rearm(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self, **_arguments: Any) -> str:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return "finished"


FIVE_EVENT_SCRIPT: list[Any] = [
    Think("planning"),
    Agent("data", [Think("looking at rows"), Call("echo", {"q": 1})], summary="rows read"),
    Call("echo", {"q": 2}),
]
"""A run that produces all five lifecycle event types, with a sub-agent and tool calls."""
