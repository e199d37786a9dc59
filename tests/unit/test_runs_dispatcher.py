"""The per-run tool dispatcher: events around every call, timeouts, errors as results."""

import asyncio
from typing import Any

import pytest

from apex.errors import NotFound
from apex.execution.context import UserExecutionContext
from apex.execution.dispatcher import RESULT_MAX_CHARS, ToolDispatcher, ToolRegistrationError
from apex.execution.emitter import RunEmitter
from apex.realtime.events import RunEvent
from apex.realtime.memory import InProcessEventBus

CTX = UserExecutionContext(user_id="u1", thread_id="t1", run_id="r1", request_id="q1")


async def make_dispatcher(default_timeout_s: float = 5.0) -> tuple[ToolDispatcher, list[RunEvent]]:
    bus = InProcessEventBus(replay_max=1_000, replay_ttl_s=60, retained_runs=10)
    events: list[RunEvent] = []
    await bus.subscribe("u1", events.append)
    emitter = RunEmitter(CTX, bus, task="t")
    await emitter.start_supervisor()
    events.clear()
    return ToolDispatcher(emitter, default_timeout_s=default_timeout_s), events


async def add(*, a: int, b: int) -> int:
    return a + b


def pair(events: list[RunEvent]) -> tuple[dict[str, Any], dict[str, Any]]:
    assert [e.type.value for e in events] == ["tool_executing", "tool_completed"]
    executing, completed = (dict(e.payload) for e in events)
    assert executing["tool_call_id"] == completed["tool_call_id"]
    assert executing["tool_name"] == completed["tool_name"]
    return executing, completed


async def test_a_call_is_announced_timed_and_reported() -> None:
    dispatcher, events = await make_dispatcher()
    dispatcher.register("add", add, summarize=lambda total: f"total {total}")
    result = await dispatcher.call("supervisor", "add", {"a": 2, "b": 3})
    executing, completed = pair(events)
    assert executing["arguments"] == {"a": 2, "b": 3}
    assert completed["status"] == "ok" and completed["result"] == 5
    assert completed["result_summary"] == "total 5"
    assert isinstance(completed["duration_ms"], float) and completed["duration_ms"] >= 0
    assert result.ok and result.result == 5 and result.tool_call_id == executing["tool_call_id"]


async def test_an_exception_is_a_result_the_agent_can_react_to() -> None:
    dispatcher, events = await make_dispatcher()

    async def broken() -> None:
        raise ValueError("no rows for that period")

    dispatcher.register("broken", broken)
    result = await dispatcher.call("supervisor", "broken")
    _executing, completed = pair(events)
    assert completed["status"] == "error" and "result" not in completed
    assert completed["result_summary"] == "ValueError: no rows for that period"
    assert not result.ok and result.error == "ValueError: no rows for that period"


async def test_a_domain_error_shows_its_own_message() -> None:
    dispatcher, events = await make_dispatcher()

    async def missing() -> None:
        raise NotFound("No usage rows yet.")

    dispatcher.register("missing", missing)
    await dispatcher.call("supervisor", "missing")
    assert pair(events)[1]["result_summary"] == "No usage rows yet."


@pytest.mark.parametrize("per_tool", [True, False])
async def test_a_slow_tool_times_out(per_tool: bool) -> None:
    dispatcher, events = await make_dispatcher(default_timeout_s=30 if per_tool else 0.05)

    async def slow() -> None:
        await asyncio.sleep(30)

    dispatcher.register("slow", slow, timeout_s=0.05 if per_tool else None)
    result = await dispatcher.call("supervisor", "slow")
    _executing, completed = pair(events)
    assert completed["status"] == "timeout" and result.status == "timeout"
    assert completed["duration_ms"] >= 50


async def test_unknown_tools_and_bad_arguments_are_errors_not_crashes() -> None:
    dispatcher, events = await make_dispatcher()
    dispatcher.register("add", add)
    unknown = await dispatcher.call("supervisor", "nope", {"x": 1})
    assert pair(events)[1]["status"] == "error" and unknown.error == "Unknown tool 'nope'."
    events.clear()
    wrong = await dispatcher.call("supervisor", "add", {"a": 1})
    assert pair(events)[1]["status"] == "error" and wrong.error.startswith("TypeError")


async def test_large_results_are_summarized_not_sent() -> None:
    dispatcher, events = await make_dispatcher()

    async def big() -> str:
        return "x" * (RESULT_MAX_CHARS + 1)

    async def hidden() -> str:
        return "secret"

    dispatcher.register("big", big)
    dispatcher.register("hidden", hidden, include_result=False)
    result = await dispatcher.call("supervisor", "big")
    completed = pair(events)[1]
    assert "result" not in completed and len(completed["result_summary"]) <= 200
    assert result.result == "x" * (RESULT_MAX_CHARS + 1)
    events.clear()
    await dispatcher.call("supervisor", "hidden")
    assert "result" not in pair(events)[1]


async def test_registration_rules() -> None:
    dispatcher, _events = await make_dispatcher()
    dispatcher.register("add", add)
    with pytest.raises(ToolRegistrationError):
        dispatcher.register("add", add)
    for bad in ("", "has space", "1st", "x" * 65):
        with pytest.raises(ToolRegistrationError):
            dispatcher.register(bad, add)
    assert list(dispatcher.tools) == ["add"]


async def test_tools_run_concurrently_with_distinct_call_ids() -> None:
    dispatcher, events = await make_dispatcher()

    async def wait(*, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    dispatcher.register("wait", wait)
    results = await asyncio.gather(
        *(dispatcher.call("supervisor", "wait", {"seconds": 0.01 * i}) for i in range(5))
    )
    assert len({r.tool_call_id for r in results}) == 5
    executing = [e.payload["tool_call_id"] for e in events if e.type.value == "tool_executing"]
    completed = [e.payload["tool_call_id"] for e in events if e.type.value == "tool_completed"]
    assert sorted(executing) == sorted(completed)
