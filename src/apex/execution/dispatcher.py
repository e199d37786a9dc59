"""The per-run tool dispatcher: every tool call is announced, timed, bounded and reported.

A workflow registers tools on its run's dispatcher and calls them by name. `tool_executing` and
`tool_completed` (same `tool_call_id`, with `duration_ms`) surround every call without the
workflow emitting anything. A tool that raises or times out does not fail the run: the caller
gets a `ToolResult` with status "error" or "timeout" and decides what to do.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from apex.errors import ApexError
from apex.execution.emitter import RunEmitter, summarize
from apex.ids import new_id
from apex.realtime.events import dumps

ToolFunction = Callable[..., Awaitable[Any]]
ToolStatus = Literal["ok", "error", "timeout"]
RESULT_MAX_CHARS = 16_384
_TOOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class ToolRegistrationError(ValueError):
    """A tool name is malformed or already taken on this run."""


@dataclass(frozen=True, slots=True)
class Tool:
    """A named async function called with keyword arguments."""

    name: str
    function: ToolFunction
    description: str = ""
    timeout_s: float | None = None
    summarize: Callable[[Any], str] | None = None
    include_result: bool = True


@dataclass(frozen=True, slots=True)
class ToolResult:
    tool_call_id: str
    tool_name: str
    status: ToolStatus
    duration_ms: float
    summary: str
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ApexError):
        return exc.message
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ToolDispatcher:
    def __init__(self, emitter: RunEmitter, *, default_timeout_s: float) -> None:
        self.emitter = emitter
        self.default_timeout_s = default_timeout_s
        self._tools: dict[str, Tool] = {}

    @property
    def tools(self) -> Mapping[str, Tool]:
        return MappingProxyType(self._tools)

    def register(
        self,
        name: str,
        function: ToolFunction,
        *,
        description: str = "",
        timeout_s: float | None = None,
        summarize: Callable[[Any], str] | None = None,
        include_result: bool = True,
    ) -> Tool:
        if not _TOOL_NAME.match(name):
            raise ToolRegistrationError(f"Tool names are identifiers, got {name!r}.")
        if name in self._tools:
            raise ToolRegistrationError(f"A tool named {name!r} is already registered.")
        tool = Tool(
            name=name,
            function=function,
            description=description,
            timeout_s=timeout_s,
            summarize=summarize,
            include_result=include_result,
        )
        self._tools[name] = tool
        return tool

    async def call(
        self, agent_name: str, tool_name: str, arguments: Mapping[str, Any] | None = None
    ) -> ToolResult:
        """Run one tool on behalf of `agent_name`; never raises for the tool's own failures."""
        arguments = dict(arguments or {})
        call_id = new_id()
        await self.emitter.tool_executing(agent_name, call_id, tool_name, arguments)
        started = time.perf_counter()
        tool = self._tools.get(tool_name)
        if tool is None:
            return await self._finish(
                call_id,
                tool_name,
                started,
                "error",
                None,
                f"Unknown tool {tool_name!r}.",
                include_result=False,
            )
        timeout_s = tool.timeout_s or self.default_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                result = await tool.function(**arguments)
        except TimeoutError:
            return await self._finish(
                call_id,
                tool_name,
                started,
                "timeout",
                None,
                f"Timed out after {timeout_s:g} s.",
                include_result=False,
            )
        except Exception as exc:
            return await self._finish(
                call_id,
                tool_name,
                started,
                "error",
                None,
                _describe_error(exc),
                include_result=False,
            )
        try:
            summary = tool.summarize(result) if tool.summarize else dumps(result)
        except Exception as exc:
            summary = f"(summary unavailable: {_describe_error(exc)})"
        include = tool.include_result and len(dumps(result)) <= RESULT_MAX_CHARS
        return await self._finish(
            call_id, tool_name, started, "ok", result, summary, include_result=include
        )

    async def _finish(
        self,
        call_id: str,
        tool_name: str,
        started: float,
        status: ToolStatus,
        result: Any,
        summary: str,
        *,
        include_result: bool,
    ) -> ToolResult:
        duration_ms = (time.perf_counter() - started) * 1000
        await self.emitter.tool_completed(
            call_id,
            status=status,
            duration_ms=duration_ms,
            result_summary=summary,
            result=result,
            include_result=include_result,
        )
        return ToolResult(
            tool_call_id=call_id,
            tool_name=tool_name,
            status=status,
            duration_ms=duration_ms,
            summary=summarize(summary),
            result=result,
            error=None if status == "ok" else summary,
        )
