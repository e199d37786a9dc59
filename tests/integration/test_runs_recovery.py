"""Several processes sharing PostgreSQL and Redis: cancellation reaches the owning process, and a
run whose process died is ended (`failed`, `worker_lost`) by another one."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from apex.errors import RateLimited
from apex.execution.context import UserExecutionContext
from apex.execution.emitter import RunEmitter
from apex.execution.manager import RunManager
from apex.ids import new_id
from apex.realtime.events import RunEvent
from apex.realtime.redis_streams import RedisEventBus
from apex.store.database import Database
from apex.store.repositories.runs import RunRepository
from apex.store.repositories.threads import ThreadRepository
from apex.store.repositories.users import UserRepository
from tests.support.protocol_checks import check_run_stream, event_types
from tests.support.scripted_workflow import Agent, Call, ScriptedWorkflow, sleeping_tool
from tests.support.services import create_pg_database


@pytest.fixture
async def shared_db(postgres_server) -> AsyncIterator[Database]:  # type: ignore[no-untyped-def]
    db = Database(await create_pg_database(postgres_server))
    await db.upgrade()
    yield db
    await db.dispose()


@pytest.fixture
async def process(
    shared_db: Database, make_settings, redis_server
) -> AsyncIterator[Callable[..., Any]]:  # type: ignore[no-untyped-def]
    """A 'process': its own Redis bus and run manager over the shared database."""
    started: list[tuple[RunManager, RedisEventBus]] = []

    async def start(workflow: Any, **overrides: Any) -> RunManager:
        settings = make_settings(redis_url=redis_server.url, **overrides)
        bus = RedisEventBus(
            redis_server.url,
            replay_max=1_000,
            replay_ttl_s=600,
            worker_lost_after_s=settings.worker_lost_after_s,
        )
        await bus.start()
        manager = RunManager(settings=settings, db=shared_db, bus=bus, workflow=workflow)
        await manager.open()
        started.append((manager, bus))
        return manager

    yield start
    for manager, bus in started:
        await manager.close()
        await bus.close()


async def record(manager: RunManager, user_id: str) -> list[RunEvent]:
    seen: list[RunEvent] = []
    await manager.bus.subscribe(user_id, seen.append)
    return seen


async def until_final(seen: list[RunEvent], timeout: float) -> list[dict[str, Any]]:
    async with asyncio.timeout(timeout):
        while not any(e.final for e in seen):
            await asyncio.sleep(0.01)
    return [e.to_dict() for e in seen]


async def test_stop_sent_to_one_process_cancels_the_run_in_another(process, shared_db) -> None:  # type: ignore[no-untyped-def]
    reached = asyncio.Event()
    workflow = ScriptedWorkflow(
        [Agent("data", [Call("slow")])], tools={"slow": sleeping_tool(30, reached)}
    )
    process_a = await process(ScriptedWorkflow([]))
    process_b = await process(workflow)
    user = await UserRepository(shared_db).create(
        email=f"{uuid.uuid4().hex}@x.io", password_hash=None, name=None
    )
    seen_on_a = await record(process_a, user.id)
    ticket = await process_b.submit(user_id=user.id, text="slow one", request_id="q")
    await asyncio.wait_for(reached.wait(), 10)
    await process_a.cancel(user.id, ticket.run_id)
    events = await until_final(seen_on_a, timeout=1.0)
    check_run_stream(events, run_id=ticket.run_id, user_id=user.id, state="cancelled")
    assert (await process_a.get(user.id, ticket.run_id)).state == "cancelled"


async def test_a_run_whose_process_died_ends_failed_worker_lost(
    process,
    shared_db,  # type: ignore[no-untyped-def]
    redis_server,
) -> None:
    survivor = await process(ScriptedWorkflow([]), worker_heartbeat_s=0.5, worker_lost_after_s=2)
    user = await UserRepository(shared_db).create(
        email=f"{uuid.uuid4().hex}@x.io", password_hash=None, name=None
    )
    seen = await record(survivor, user.id)
    thread = await ThreadRepository(shared_db).create(user.id, "t")
    ctx = UserExecutionContext(
        user_id=user.id, thread_id=thread.id, run_id=new_id(), request_id="q"
    )
    await RunRepository(shared_db).create(
        run_id=ctx.run_id,
        user_id=user.id,
        thread_id=thread.id,
        text="interrupted",
        worker_id="dead-process",
    )
    dead_bus = RedisEventBus(
        redis_server.url, replay_max=1_000, replay_ttl_s=600, worker_lost_after_s=2
    )
    await dead_bus.start()
    await dead_bus.heartbeat("dead-process")
    dying = RunEmitter(ctx, dead_bus, task="interrupted")
    await dying.start_supervisor()
    await dying.agent_started("data", "read rows")
    await dying.tool_executing("data", "call-1", "usage_summary", {})
    await dead_bus.close()
    events = await until_final(seen, timeout=15)
    check_run_stream(events, run_id=ctx.run_id, user_id=user.id, state="failed")
    assert event_types(events)[-3:] == ["tool_completed", "agent_error", "agent_error"]
    assert events[-1]["payload"]["error"]["code"] == "worker_lost"
    run = await survivor.get(user.id, ctx.run_id)
    assert (run.state, run.error_code) == ("failed", "worker_lost")
    assert await survivor.recover_lost_runs() == 0


async def test_runs_of_live_processes_are_left_alone(process, shared_db) -> None:  # type: ignore[no-untyped-def]
    reached = asyncio.Event()
    busy = await process(
        ScriptedWorkflow([Call("slow")], tools={"slow": sleeping_tool(30, reached)}),
        worker_heartbeat_s=0.5,
        worker_lost_after_s=2,
    )
    watcher = await process(ScriptedWorkflow([]), worker_heartbeat_s=0.5, worker_lost_after_s=2)
    user = await UserRepository(shared_db).create(
        email=f"{uuid.uuid4().hex}@x.io", password_hash=None, name=None
    )
    ticket = await busy.submit(user_id=user.id, text="long", request_id="q")
    await asyncio.wait_for(reached.wait(), 10)
    await asyncio.sleep(3)
    assert await watcher.recover_lost_runs() == 0
    assert (await watcher.get(user.id, ticket.run_id)).state == "running"
    await busy.cancel(user.id, ticket.run_id)


async def test_the_per_user_run_limit_holds_across_processes(process, shared_db) -> None:  # type: ignore[no-untyped-def]
    reached = asyncio.Event()
    slow = ScriptedWorkflow([Call("slow")], tools={"slow": sleeping_tool(30, reached)})
    process_a = await process(slow, max_runs_per_user=1)
    process_b = await process(ScriptedWorkflow([]), max_runs_per_user=1)
    user = await UserRepository(shared_db).create(
        email=f"{uuid.uuid4().hex}@x.io", password_hash=None, name=None
    )
    seen = await record(process_b, user.id)
    busy = await process_a.submit(user_id=user.id, text="long", request_id="q")
    await asyncio.wait_for(reached.wait(), 10)
    waiting = await process_b.submit(user_id=user.id, text="short", request_id="r")
    await asyncio.sleep(1)
    assert (await process_b.get(user.id, waiting.run_id)).state == "pending"
    assert not [e for e in seen if e.run_id == waiting.run_id]
    await process_a.cancel(user.id, busy.run_id)
    async with asyncio.timeout(10):
        while not any(e.final and e.run_id == waiting.run_id for e in seen):
            await asyncio.sleep(0.02)
    assert (await process_b.get(user.id, waiting.run_id)).state == "completed"


async def test_the_limit_on_runs_in_progress_or_waiting_holds_across_processes(
    process, shared_db
) -> None:  # type: ignore[no-untyped-def]
    reached = asyncio.Event()
    slow = ScriptedWorkflow([Call("slow")], tools={"slow": sleeping_tool(30, reached)})
    limits = {"max_runs_per_user": 1, "max_queued_runs_per_user": 1}
    process_a, process_b = await process(slow, **limits), await process(slow, **limits)
    users = UserRepository(shared_db)
    user, other = [
        await users.create(email=f"{uuid.uuid4().hex}@x.io", password_hash=None, name=None)
        for _ in range(2)
    ]
    seen = await record(process_b, user.id)
    busy = await process_a.submit(user_id=user.id, text="long", request_id="q")
    await asyncio.wait_for(reached.wait(), 10)
    queued = await process_b.submit(user_id=user.id, text="long", request_id="r")
    for manager in (process_a, process_b):
        with pytest.raises(RateLimited) as refused:
            await manager.submit(user_id=user.id, text="one too many", request_id="s")
        assert refused.value.code == "too_many_runs"
    assert await process_b.submit(user_id=other.id, text="long", request_id="t")
    await process_a.cancel(user.id, busy.run_id)
    async with asyncio.timeout(10):
        while not any(e.final and e.run_id == busy.run_id for e in seen):
            await asyncio.sleep(0.02)
    admitted = await process_b.submit(user_id=user.id, text="long", request_id="u")
    assert (await process_b.get(user.id, admitted.run_id)).state in {
        "pending",
        "starting",
        "running",
    }
    for run_id in (queued.run_id, admitted.run_id):
        await process_b.cancel(user.id, run_id)


async def test_a_run_its_own_live_process_no_longer_executes_is_ended(process, shared_db) -> None:  # type: ignore[no-untyped-def]
    """Its end could not be stored when it happened (the database was away): the process's own
    sweep ends it, with its final event, once the database answers."""
    manager = await process(
        ScriptedWorkflow([]), worker_heartbeat_s=60, worker_lost_after_s=120
    )  # only this test's sweeps run
    user = await UserRepository(shared_db).create(
        email=f"{uuid.uuid4().hex}@x.io", password_hash=None, name=None
    )
    seen = await record(manager, user.id)
    thread = await ThreadRepository(shared_db).create(user.id, "t")
    run_id = new_id()
    await RunRepository(shared_db).create(
        run_id=run_id,
        user_id=user.id,
        thread_id=thread.id,
        text="stalled",
        worker_id=manager.worker_id,
    )
    assert await manager.end_orphaned_runs() == 0, "too young to be judged"
    await asyncio.sleep(2.1)
    assert await manager.end_orphaned_runs() == 1
    events = await until_final(seen, timeout=5)
    check_run_stream(events, run_id=run_id, user_id=user.id, state="failed")
    assert events[-1]["payload"]["error"]["code"] == "run_stalled"
    run = await manager.get(user.id, run_id)
    assert (run.state, run.error_code, run.last_seq) == ("failed", "run_stalled", len(events))
    assert run.final_event is not None and '"final":true' in run.final_event
