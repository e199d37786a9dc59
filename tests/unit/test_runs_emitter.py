"""The run emitter enforces the protocol's order and closes whatever is open at the end."""

import asyncio

import pytest

from apex.errors import NotFound
from apex.execution.context import UserExecutionContext
from apex.execution.dispatcher import ToolDispatcher
from apex.execution.emitter import EventOrderError, RunBrackets, RunEmitter
from apex.execution.workflow import WorkflowContext
from apex.realtime.bus import RunEndedError
from apex.realtime.events import RunEvent
from apex.realtime.memory import InProcessEventBus

CTX = UserExecutionContext(user_id="u1", thread_id="t1", run_id="r1", request_id="q1")


async def make_emitter() -> tuple[RunEmitter, list[RunEvent]]:
    bus = InProcessEventBus(replay_max=1_000, replay_ttl_s=60, retained_runs=10)
    events: list[RunEvent] = []
    await bus.subscribe("u1", events.append)
    return RunEmitter(CTX, bus, task="How do I cut cost?"), events


def kinds(events: list[RunEvent]) -> list[tuple[str, str]]:
    return [(e.type.value, e.agent_name) for e in events]


async def test_the_supervisor_is_only_started_and_ended_by_the_manager() -> None:
    emitter, _events = await make_emitter()
    await emitter.start_supervisor()
    with pytest.raises(EventOrderError):
        await emitter.agent_started("supervisor", "again")
    with pytest.raises(EventOrderError):
        await emitter.agent_completed("supervisor", "early")
    with pytest.raises(EventOrderError):
        await emitter.start_supervisor()


async def test_sub_agent_events_need_an_open_bracket() -> None:
    emitter, _events = await make_emitter()
    await emitter.start_supervisor()
    with pytest.raises(EventOrderError):
        await emitter.agent_thinking("data", "not started")
    with pytest.raises(EventOrderError):
        await emitter.agent_completed("data", "not started")
    await emitter.agent_started("data", "read rows")
    with pytest.raises(EventOrderError):
        await emitter.agent_started("data", "twice")
    with pytest.raises(EventOrderError):
        await emitter.agent_started("Bad Name", "x")
    await emitter.agent_completed("data", "ok")
    with pytest.raises(EventOrderError):
        await emitter.agent_thinking("data", "after its end")
    with pytest.raises(EventOrderError):
        await emitter.tool_completed("no-such-call", status="ok", duration_ms=1, result_summary="x")


async def test_thinking_carries_optional_steps() -> None:
    emitter, events = await make_emitter()
    await emitter.start_supervisor()
    await emitter.agent_thinking("supervisor", "one", step=1, total_steps=3)
    await emitter.agent_thinking("supervisor", "plain")
    assert events[1].payload == {"thought": "one", "step": 1, "total_steps": 3}
    assert events[2].payload == {"thought": "plain"}


async def test_stopping_closes_open_tools_then_agents_then_ends_the_run() -> None:
    emitter, events = await make_emitter()
    await emitter.start_supervisor()
    await emitter.agent_started("data", "read rows")
    await emitter.agent_started("optimization", "find savings")
    await emitter.tool_executing("data", "call-1", "usage_summary", {"days": 30})
    final = await emitter.finish_stopped()
    assert kinds(events)[4:] == [
        ("tool_completed", "data"),
        ("agent_error", "optimization"),
        ("agent_error", "data"),
        ("agent_stopped", "supervisor"),
    ]
    assert events[4].payload["tool_call_id"] == "call-1"
    assert events[4].payload["status"] == "error"
    assert events[5].payload["error"]["code"] == "run_cancelled"
    assert final.payload == {"final": True, "state": "cancelled"}
    assert [e.seq for e in events] == list(range(1, 9))
    with pytest.raises(RunEndedError):
        await emitter.agent_thinking("supervisor", "too late")


async def test_a_timeout_marks_open_tool_calls_as_timed_out() -> None:
    emitter, events = await make_emitter()
    await emitter.start_supervisor()
    await emitter.tool_executing("supervisor", "call-1", "slow", {})
    await emitter.finish_error("timeout", "run_timeout", "The run took longer than 1 s.")
    assert events[2].payload["status"] == "timeout"
    assert events[-1].payload == {
        "error": {"code": "run_timeout", "message": "The run took longer than 1 s."},
        "final": True,
        "state": "timeout",
    }


async def test_ending_a_run_that_never_started_still_opens_with_the_supervisor() -> None:
    emitter, events = await make_emitter()
    await emitter.finish_stopped()
    assert kinds(events) == [("agent_started", "supervisor"), ("agent_stopped", "supervisor")]
    assert events[0].payload == {"task": "How do I cut cost?"}


async def test_completion_carries_the_answer_and_report() -> None:
    emitter, events = await make_emitter()
    await emitter.start_supervisor()
    await emitter.finish_completed(
        "Move summaries to a cheaper model.\nDetails…", {"markdown": "# Plan"}
    )
    assert events[-1].payload == {
        "result_summary": "Move summaries to a cheaper model. Details…",
        "final": True,
        "state": "completed",
        "final_response": "Move summaries to a cheaper model.\nDetails…",
        "report": {"markdown": "# Plan"},
    }


async def test_brackets_are_rebuilt_from_a_stored_log() -> None:
    emitter, events = await make_emitter()
    await emitter.start_supervisor()
    await emitter.agent_started("data", "read rows")
    await emitter.tool_executing("data", "call-1", "usage_summary", {})
    await emitter.tool_executing("data", "call-2", "price_lookup", {})
    await emitter.tool_completed("call-1", status="ok", duration_ms=3, result_summary="ok")
    brackets = RunBrackets.replayed(events)
    assert brackets.started and not brackets.ended
    assert list(brackets.agents) == ["data"]
    assert (
        list(brackets.tools) == ["call-2"] and brackets.tools["call-2"].tool_name == "price_lookup"
    )
    trimmed = RunBrackets.replayed(events[2:])
    assert trimmed.started


async def test_a_cancelled_tool_call_is_closed_by_the_end_of_the_run() -> None:
    emitter, events = await make_emitter()
    await emitter.start_supervisor()
    dispatcher = ToolDispatcher(emitter, default_timeout_s=30)
    reached = asyncio.Event()

    async def slow() -> None:
        reached.set()
        await asyncio.sleep(30)

    dispatcher.register("slow", slow)
    call = asyncio.create_task(dispatcher.call("supervisor", "slow"))
    await reached.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert list(emitter.brackets.tools)
    await emitter.finish_stopped()
    assert kinds(events)[-2:] == [("tool_completed", "supervisor"), ("agent_stopped", "supervisor")]
    assert events[1].payload["tool_call_id"] == events[2].payload["tool_call_id"]


async def test_a_workflow_brackets_sub_agents_and_reports_their_failures() -> None:
    emitter, events = await make_emitter()
    await emitter.start_supervisor()
    context = WorkflowContext(
        ctx=CTX,
        text="q",
        history=(),
        events=emitter,
        tools=ToolDispatcher(emitter, default_timeout_s=5),
    )
    async with context.agent("triage", "classify") as triage:
        assert (triage.ctx.user_id, triage.ctx.run_id, triage.ctx.agent_name) == (
            "u1",
            "r1",
            "triage",
        )
        await triage.think("cost cues")
        triage.result_summary = "cost question"
    with pytest.raises(NotFound):
        async with context.agent("data", "read rows"):
            raise NotFound("No usage rows yet.", code="no_usage_rows")
    await context.think("answering")
    assert kinds(events)[1:] == [
        ("agent_started", "triage"),
        ("agent_thinking", "triage"),
        ("agent_completed", "triage"),
        ("agent_started", "data"),
        ("agent_error", "data"),
        ("agent_thinking", "supervisor"),
    ]
    assert events[3].payload == {"result_summary": "cost question"}
    assert events[5].payload == {
        "error": {"code": "no_usage_rows", "message": "No usage rows yet."}
    }
