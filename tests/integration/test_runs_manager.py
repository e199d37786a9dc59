"""The RunManager on real databases (SQLite and PostgreSQL): limits, timeout, cancellation,
failures, shutdown and recovery, each ending with exactly one final event."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from apex.errors import NotFound, RateLimited
from apex.execution.context import UserExecutionContext
from apex.execution.manager import RunManager
from apex.execution.state import IllegalRunTransition, RunState, RunTracker
from apex.execution.workflow import Workflow
from apex.ids import new_id
from apex.realtime.bus import EventBus
from apex.realtime.events import RunEvent
from apex.realtime.memory import InProcessEventBus
from apex.store.database import Database
from apex.store.repositories.runs import RunRepository
from apex.store.repositories.threads import ThreadRepository
from apex.store.repositories.users import UserRepository
from tests.support.protocol_checks import check_run_stream, event_types
from tests.support.scripted_workflow import (
    FIVE_EVENT_SCRIPT,
    Agent,
    Call,
    Fail,
    ScriptedWorkflow,
    Signal,
    Sleep,
    Think,
    echo_tool,
    sleeping_tool,
)


@dataclass
class Harness:
    manager: RunManager
    bus: EventBus
    db: Database
    events: dict[str, list[RunEvent]] = field(default_factory=dict)
    arrivals: list[RunEvent] = field(default_factory=list)  # every user's, in order

    async def user(self) -> str:
        user = await UserRepository(self.db).create(
            email=f"{uuid.uuid4().hex[:12]}@example.com", password_hash=None, name=None
        )

        def record(event: RunEvent) -> None:
            self.events.setdefault(event.run_id, []).append(event)
            self.arrivals.append(event)

        await self.bus.subscribe(user.id, record)
        return user.id

    async def submit(self, user_id: str, text: str = "cut my costs", **options: Any) -> str:
        ticket = await self.manager.submit(
            user_id=user_id, text=text, request_id=new_id(), **options
        )
        return ticket.run_id

    async def final(self, run_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout):
            while not any(e.final for e in self.events.get(run_id, [])):
                await asyncio.sleep(0.01)
        return [e.to_dict() for e in self.events[run_id]]

    async def state(self, user_id: str, run_id: str) -> str:
        return (await self.manager.get(user_id, run_id)).state


@pytest.fixture
async def harness(database: Database, make_settings) -> AsyncIterator[Callable[..., Any]]:  # type: ignore[no-untyped-def]
    built: list[Harness] = []

    async def build(workflow: Workflow, bus: EventBus | None = None, **overrides: Any) -> Harness:
        bus = bus or InProcessEventBus(replay_max=10_000, replay_ttl_s=600, retained_runs=100)
        await bus.start()
        manager = RunManager(
            settings=make_settings(**overrides), db=database, bus=bus, workflow=workflow
        )
        await manager.open()
        built.append(Harness(manager, bus, database))
        return built[-1]

    yield build
    for item in built:
        await item.manager.close()
        await item.bus.close()


async def test_start_returns_at_once_and_the_run_completes(harness) -> None:  # type: ignore[no-untyped-def]
    gate = asyncio.Event()
    workflow = ScriptedWorkflow(
        [Signal(gate), *FIVE_EVENT_SCRIPT],
        tools={"echo": echo_tool},
        report={"markdown": "# plan", "recommendations": []},
    )
    h = await harness(workflow)
    user_id = await h.user()
    run_id = await h.submit(user_id, "How can I cut my AI costs by 30%?")
    run = await h.manager.get(user_id, run_id)
    # returned before the workflow ran (on a busy machine its task may already be starting)
    assert run.state in ("pending", "starting")
    assert run.text == "How can I cut my AI costs by 30%?"
    assert not gate.is_set()
    events = await h.final(run_id)
    check_run_stream(events, run_id=run_id, user_id=user_id, state="completed")
    assert set(event_types(events)) >= {
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    }
    run = await h.manager.get(user_id, run_id)
    assert run.state == "completed" and run.started_at and run.finished_at
    assert run.final_response == "All done. (How can I cut my AI costs by 30%?)"
    assert run.report == {"markdown": "# plan", "recommendations": []}
    thread = await ThreadRepository(h.db).get(user_id, run.thread_id)
    assert thread.title == "How can I cut my AI costs by 30%?" and thread.message_count == 2
    messages = (await h.manager.messages.list(user_id, run.thread_id, limit=10)).items
    assert [(m.role, m.run_id) for m in messages] == [("user", run_id), ("assistant", run_id)]
    assert messages[1].report == {"markdown": "# plan", "recommendations": []}


async def test_a_workflow_reads_the_thread_history(harness) -> None:  # type: ignore[no-untyped-def]
    workflow = ScriptedWorkflow([])
    h = await harness(workflow)
    user_id = await h.user()
    first = await h.submit(user_id, "first question")
    await h.final(first)
    thread_id = (await h.manager.get(user_id, first)).thread_id
    second = await h.submit(user_id, "second question", thread_id=thread_id)
    await h.final(second)
    history = workflow.contexts[1].history
    assert [(m.role, m.text) for m in history] == [
        ("user", "first question"),
        ("assistant", "All done. (first question)"),
    ]
    assert workflow.contexts[1].ctx.thread_id == thread_id
    assert workflow.contexts[0].history == ()


async def test_runs_beyond_the_per_user_limit_wait_in_pending(harness) -> None:  # type: ignore[no-untyped-def]
    release = asyncio.Event()

    async def wait_for_release() -> str:
        await release.wait()
        return "released"

    workflow = ScriptedWorkflow([Call("hold")], tools={"hold": wait_for_release})
    h = await harness(workflow, max_runs_per_user=2)
    user_id, other = await h.user(), await h.user()
    mine = [await h.submit(user_id) for _ in range(3)]
    theirs = await h.submit(other)
    async with asyncio.timeout(10):
        while [await h.state(user_id, r) for r in mine[:2]] != ["running", "running"] or (
            await h.state(other, theirs) != "running"
        ):
            await asyncio.sleep(0.02)
    assert await h.state(user_id, mine[2]) == "pending"
    assert mine[2] not in h.events
    release.set()
    for run_id in mine:
        check_run_stream(await h.final(run_id), run_id=run_id, user_id=user_id, state="completed")


async def test_the_global_limit_holds_across_users(harness) -> None:  # type: ignore[no-untyped-def]
    release = asyncio.Event()

    async def wait_for_release() -> str:
        await release.wait()
        return "released"

    workflow = ScriptedWorkflow([Call("hold")], tools={"hold": wait_for_release})
    h = await harness(workflow, max_runs_global=2)
    users = [await h.user() for _ in range(3)]
    runs = [await h.submit(user) for user in users]
    async with asyncio.timeout(10):
        while sorted([await h.state(u, r) for u, r in zip(users, runs, strict=True)]) != [
            "pending",
            "running",
            "running",
        ]:
            await asyncio.sleep(0.02)
    release.set()
    for user, run_id in zip(users, runs, strict=True):
        await h.final(run_id)
        assert await h.state(user, run_id) == "completed"


async def test_too_many_waiting_runs_are_refused(harness) -> None:  # type: ignore[no-untyped-def]
    h = await harness(ScriptedWorkflow([Sleep(5)]), max_runs_per_user=1, max_queued_runs_per_user=1)
    user_id = await h.user()
    await h.submit(user_id)
    await h.submit(user_id)
    with pytest.raises(RateLimited) as refused:
        await h.submit(user_id)
    assert refused.value.code == "too_many_runs" and refused.value.retry_after_s > 0


async def test_a_run_past_its_timeout_ends_in_timeout(harness) -> None:  # type: ignore[no-untyped-def]
    reached = asyncio.Event()
    workflow = ScriptedWorkflow(
        [Agent("data", [Call("slow")])], tools={"slow": sleeping_tool(30, reached)}
    )
    h = await harness(workflow, run_timeout_s=0.5)
    user_id = await h.user()
    run_id = await h.submit(user_id)
    events = await h.final(run_id)
    check_run_stream(events, run_id=run_id, user_id=user_id, state="timeout")
    assert events[-1]["payload"]["error"]["code"] == "run_timeout"
    closing = [e for e in events if e["type"] == "tool_completed"]
    assert closing[0]["payload"]["status"] == "timeout"
    run = await h.manager.get(user_id, run_id)
    assert (run.state, run.error_code) == ("timeout", "run_timeout")


async def test_cancel_stops_a_running_tool_and_ends_cancelled(harness) -> None:  # type: ignore[no-untyped-def]
    reached = asyncio.Event()
    workflow = ScriptedWorkflow(
        [Agent("data", [Call("slow")])], tools={"slow": sleeping_tool(30, reached)}
    )
    h = await harness(workflow)
    user_id = await h.user()
    run_id = await h.submit(user_id)
    await asyncio.wait_for(reached.wait(), 10)
    assert await h.manager.cancel(user_id, run_id) == RunState.RUNNING
    events = await h.final(run_id, timeout=1.0)
    check_run_stream(events, run_id=run_id, user_id=user_id, state="cancelled")
    assert event_types(events)[-3:] == ["tool_completed", "agent_error", "agent_stopped"]
    assert await h.state(user_id, run_id) == "cancelled"
    assert await h.manager.cancel(user_id, run_id) == RunState.CANCELLED
    assert [e.seq for e in h.events[run_id]][-1] == len(events)


async def test_cancel_while_pending_never_runs_the_workflow(harness) -> None:  # type: ignore[no-untyped-def]
    workflow = ScriptedWorkflow([Sleep(30)])
    h = await harness(workflow, max_runs_per_user=1)
    user_id = await h.user()
    running = await h.submit(user_id)
    waiting = await h.submit(user_id)
    async with asyncio.timeout(10):
        while not workflow.contexts:
            await asyncio.sleep(0.01)
    await h.manager.cancel(user_id, waiting)
    events = await h.final(waiting)
    check_run_stream(events, run_id=waiting, user_id=user_id, state="cancelled")
    assert event_types(events) == ["agent_started", "agent_stopped"]
    assert len(workflow.contexts) == 1
    run = await h.manager.get(user_id, waiting)
    assert run.state == "cancelled" and run.started_at is None
    await h.manager.cancel(user_id, running)
    await h.final(running)


async def test_cancel_is_scoped_to_the_owner(harness) -> None:  # type: ignore[no-untyped-def]
    h = await harness(ScriptedWorkflow([Sleep(30)]))
    owner, intruder = await h.user(), await h.user()
    run_id = await h.submit(owner)
    with pytest.raises(NotFound) as refused:
        await h.manager.cancel(intruder, run_id)
    assert refused.value.code == "run_not_found"
    with pytest.raises(NotFound):
        await h.manager.get(intruder, run_id)
    assert (await h.manager.get(owner, run_id)).state in ("pending", "starting", "running")
    await h.manager.cancel(owner, run_id)
    await h.final(run_id)


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (
            NotFound("No usage rows for March.", code="no_usage_rows"),
            "no_usage_rows",
            "No usage rows for March.",
        ),
        (RuntimeError("secret internals"), "workflow_error", "The run failed unexpectedly."),
    ],
)
async def test_a_failing_workflow_ends_failed_with_a_clear_code(
    harness,
    error: Exception,  # type: ignore[no-untyped-def]
    code: str,
    message: str,
) -> None:
    workflow = ScriptedWorkflow([Agent("data", [Think("about to fail"), Fail(error)])])
    h = await harness(workflow)
    user_id = await h.user()
    run_id = await h.submit(user_id)
    events = await h.final(run_id)
    check_run_stream(events, run_id=run_id, user_id=user_id, state="failed")
    assert events[-1]["payload"]["error"] == {"code": code, "message": message}
    run = await h.manager.get(user_id, run_id)
    assert (run.state, run.error_code, run.error_message) == ("failed", code, message)
    assert run.final_response is None


async def test_a_workflow_breaking_the_event_order_fails_its_run_only(harness) -> None:  # type: ignore[no-untyped-def]
    class OutOfOrder:
        async def run(self, context):  # type: ignore[no-untyped-def]
            await context.events.agent_completed("data", "never started")

    h = await harness(OutOfOrder())
    user_id = await h.user()
    run_id = await h.submit(user_id)
    events = await h.final(run_id)
    check_run_stream(events, run_id=run_id, user_id=user_id, state="failed")
    assert events[-1]["payload"]["error"]["code"] == "workflow_error"


async def test_shutdown_ends_every_run_as_failed(harness) -> None:  # type: ignore[no-untyped-def]
    reached = asyncio.Event()
    workflow = ScriptedWorkflow([Call("slow")], tools={"slow": sleeping_tool(30, reached)})
    h = await harness(workflow, max_runs_per_user=1)
    user_id = await h.user()
    running = await h.submit(user_id)
    waiting = await h.submit(user_id)
    await asyncio.wait_for(reached.wait(), 10)
    await h.manager.close()
    for run_id in (running, waiting):
        events = await h.final(run_id, timeout=1)
        check_run_stream(events, run_id=run_id, user_id=user_id, state="failed")
        assert events[-1]["payload"]["error"]["code"] == "server_shutdown"
        run = await h.manager.get(user_id, run_id)
        assert (run.state, run.error_code) == ("failed", "server_shutdown")
    with pytest.raises(Exception) as refused:
        await h.submit(user_id)
    assert getattr(refused.value, "code", None) == "shutting_down"


async def test_an_embedded_restart_fails_runs_the_previous_process_left(harness, database) -> None:  # type: ignore[no-untyped-def]
    first = await harness(ScriptedWorkflow([]))
    user_id = await first.user()
    thread = await ThreadRepository(database).create(user_id, "t")
    run_id = new_id()
    await RunRepository(database).create(
        run_id=run_id,
        user_id=user_id,
        thread_id=thread.id,
        text="orphan",
        worker_id="crashed-process",
    )
    await harness(ScriptedWorkflow([]))
    run = await first.manager.get(user_id, run_id)
    assert (run.state, run.error_code) == ("failed", "worker_lost")


async def test_the_tracker_refuses_illegal_and_lost_transitions(harness, database) -> None:  # type: ignore[no-untyped-def]
    h = await harness(ScriptedWorkflow([]))
    user_id = await h.user()
    thread = await ThreadRepository(database).create(user_id, "t")
    ctx = UserExecutionContext(
        user_id=user_id, thread_id=thread.id, run_id=new_id(), request_id="q"
    )
    runs = RunRepository(database)
    await runs.create(
        run_id=ctx.run_id, user_id=user_id, thread_id=thread.id, text="x", worker_id="w"
    )
    tracker = RunTracker(runs)
    with pytest.raises(IllegalRunTransition):
        await tracker.transition(ctx, RunState.RUNNING)
    await tracker.transition(ctx, RunState.STARTING)
    results = await asyncio.gather(
        tracker.transition(ctx, RunState.CANCELLED),
        tracker.transition(ctx, RunState.FAILED),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["IllegalRunTransition", "RunState"]
    final = await tracker.current(ctx)
    assert final in (RunState.CANCELLED, RunState.FAILED)
    with pytest.raises(IllegalRunTransition):
        await tracker.transition(ctx, RunState.COMPLETED, expected=RunState.COMPLETING)
    assert await tracker.current(ctx) == final
    other = UserExecutionContext(
        user_id="someone", thread_id=thread.id, run_id=ctx.run_id, request_id="q"
    )
    with pytest.raises(NotFound):
        await tracker.transition(other, RunState.FAILED)


async def test_runs_stopped_before_their_task_began_still_end(harness) -> None:  # type: ignore[no-untyped-def]
    # Whether a task got as far as the workflow before the stop depends on scheduling (each
    # submit and the cancel await the database); what is guaranteed, and checked, is how each
    # run ends.
    workflow = ScriptedWorkflow([Sleep(30)])
    h = await harness(workflow)
    user_id = await h.user()
    cancelled = await h.submit(user_id)
    await h.manager.cancel(user_id, cancelled)
    shut = [await h.submit(user_id) for _ in range(2)]
    await h.manager.close()
    events = await h.final(cancelled)
    check_run_stream(events, run_id=cancelled, user_id=user_id, state="cancelled")
    assert event_types(events) == ["agent_started", "agent_stopped"]
    for run_id in shut:
        check_run_stream(await h.final(run_id), run_id=run_id, user_id=user_id, state="failed")
        assert await h.state(user_id, run_id) == "failed"


async def test_runs_created_together_are_each_stored_and_a_foreign_thread_fails_alone(
    harness, database
) -> None:  # type: ignore[no-untyped-def]
    h = await harness(ScriptedWorkflow([]))
    owner, stranger = await h.user(), await h.user()
    kept = await ThreadRepository(database).create(owner, "kept")
    foreign = await ThreadRepository(database).create(stranger, "theirs")
    runs = RunRepository(database)

    def create(user_id: str, thread_id: str, title: str | None) -> Any:
        return runs.create(
            run_id=new_id(),
            user_id=user_id,
            thread_id=thread_id,
            text=f"question in {title or thread_id}",
            worker_id="w",
            new_thread_title=title,
        )

    new_threads = [new_id() for _ in range(5)]
    results = await asyncio.gather(
        *(create(owner, thread_id, f"new {i}") for i, thread_id in enumerate(new_threads)),
        create(owner, kept.id, None),
        create(owner, kept.id, None),
        create(owner, foreign.id, None),
        return_exceptions=True,
    )
    assert results[:7] == [None] * 7
    assert isinstance(results[7], NotFound) and results[7].code == "thread_not_found"
    for i, thread_id in enumerate(new_threads):
        thread = await ThreadRepository(database).get(owner, thread_id)
        assert (thread.title, thread.message_count) == (f"new {i}", 1)
        messages = (await h.manager.messages.list(owner, thread_id, limit=10)).items
        assert [(m.role, m.text) for m in messages] == [("user", f"question in new {i}")]
    assert (await ThreadRepository(database).get(owner, kept.id)).message_count == 2
    assert (await ThreadRepository(database).get(stranger, foreign.id)).message_count == 0
    assert len((await h.manager.messages.list(stranger, foreign.id, limit=10)).items) == 0


async def test_answers_stored_at_once_on_one_thread_are_all_counted(harness, database) -> None:  # type: ignore[no-untyped-def]
    h = await harness(ScriptedWorkflow([]))
    owner = await h.user()
    thread = await ThreadRepository(database).create(owner, "busy")
    runs = RunRepository(database)
    run_ids = [new_id() for _ in range(4)]
    for run_id in run_ids:
        await runs.create(
            run_id=run_id, user_id=owner, thread_id=thread.id, text="q", worker_id="w"
        )
    stored = await asyncio.gather(
        *(
            runs.compare_and_set(
                user_id=owner,
                run_id=run_id,
                expected="pending",
                target="completed",
                values={},
                reply=f"answer {run_id}",
            )
            for run_id in run_ids
        )
    )
    assert stored == [True] * 4
    assert (await ThreadRepository(database).get(owner, thread.id)).message_count == 8
    messages = (await h.manager.messages.list(owner, thread.id, limit=20)).items
    assert sorted(m.text for m in messages if m.role == "assistant") == sorted(
        f"answer {run_id}" for run_id in run_ids
    )


async def test_a_started_run_goes_on_once_no_run_is_starting_or_its_wait_ends(harness) -> None:  # type: ignore[no-untyped-def]
    h = await harness(ScriptedWorkflow([Think("working")]))
    first_user, second_user = await h.user(), await h.user()
    h.manager.starts.max_wait_s = 30.0
    stored = asyncio.Event()
    create = h.manager.runs.create

    async def slow_create(**values: Any) -> None:
        if values["user_id"] == second_user:
            await stored.wait()
        await create(**values)

    h.manager.runs.create = slow_create  # type: ignore[method-assign]
    first = await h.submit(first_user)
    second = asyncio.create_task(h.submit(second_user))
    await asyncio.sleep(0.5)
    assert [event.seq for event in h.events[first]] == [1]  # waits while the second starts
    stored.set()
    second_id = await second
    await h.final(first)
    await h.final(second_id)
    seen = [(event.run_id, event.seq) for event in h.arrivals]
    assert seen.index((second_id, 1)) < seen.index((first, 2))

    h.manager.starts.max_wait_s = 0.2
    stored.clear()
    third = await h.submit(first_user)
    stuck = asyncio.create_task(h.submit(second_user))
    await h.final(third)  # the wait ends on its own
    assert not stuck.done()
    stored.set()
    await h.final(await stuck)


async def test_a_run_queued_behind_its_users_limit_does_not_hold_up_other_runs(harness) -> None:  # type: ignore[no-untyped-def]
    h = await harness(ScriptedWorkflow([Sleep(1.0)]), max_runs_per_user=1)
    h.manager.starts.max_wait_s = 30.0
    busy, other = await h.user(), await h.user()
    running = await h.submit(busy)
    queued = await h.submit(busy)
    await asyncio.sleep(0.2)
    assert [event.seq for event in h.events[running]] == [1]
    assert queued not in h.events  # waits for its user's slot
    started = asyncio.get_running_loop().time()
    await h.final(await h.submit(other), timeout=5.0)
    assert asyncio.get_running_loop().time() - started < 2.5
    await h.final(queued)
