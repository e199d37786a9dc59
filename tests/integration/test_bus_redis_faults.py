"""The Redis bus through Redis's own faults, against a real `redis-server` each test may stop:
numbering that survives a restart without persistence, an outbox while Redis is away, a
subscriber that Redis drops and that backfills, liveness that is not judged too early, and
run slots shared by processes."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis.asyncio as aioredis

from apex.realtime.bus import Admission, NoFreeSlot
from apex.realtime.events import EventDraft, EventType, RunEvent
from apex.realtime.redis_streams import RedisEventBus
from tests.support.services import RedisServer

WAIT_S = 10.0


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture
async def make_bus(own_redis: RedisServer) -> AsyncIterator[Callable[..., RedisEventBus]]:
    started: list[RedisEventBus] = []

    def make(worker_lost_after_s: float = 15) -> RedisEventBus:
        bus = RedisEventBus(
            own_redis.url,
            replay_max=1_000,
            replay_ttl_s=600,
            worker_lost_after_s=worker_lost_after_s,
            outbox_max=100,
        )
        started.append(bus)
        return bus

    yield make
    for bus in started:
        await bus.close()


def draft(run_id: str, user_id: str, n: int, *, final: bool = False) -> EventDraft:
    payload: dict[str, object] = {"thought": str(n)}
    if final:
        payload = {"final": True, "state": "completed", "result_summary": "done"}
    return EventDraft(
        type=EventType.AGENT_THINKING if not final else EventType.AGENT_COMPLETED,
        run_id=run_id,
        thread_id="t",
        user_id=user_id,
        agent_name="supervisor",
        payload=payload,
    )


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.02)


async def test_numbering_continues_above_the_floor_after_redis_lost_the_run(
    make_bus, own_redis: RedisServer
) -> None:  # type: ignore[no-untyped-def]
    bus = make_bus()
    await bus.start()
    run_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    seqs = [(await bus.publish(draft(run_id, user_id, n))).seq for n in range(5)]
    await asyncio.to_thread(own_redis.restart)
    after = await bus.publish(draft(run_id, user_id, 5), floor=seqs[-1])
    assert seqs == [1, 2, 3, 4, 5] and after.seq == 6
    async with asyncio.timeout(WAIT_S):
        while not (stored := await bus.replay(run_id)):
            await asyncio.sleep(0.05)
    assert [e.event_id for e in stored] == [after.event_id] and stored[0].seq == 6


async def test_events_wait_in_order_while_redis_is_away_and_reach_it_when_back(
    make_bus, own_redis: RedisServer
) -> None:  # type: ignore[no-untyped-def]
    publisher, watcher = make_bus(), make_bus()
    await publisher.start()
    await watcher.start()
    run_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    local: list[RunEvent] = []
    remote: list[RunEvent] = []
    await publisher.subscribe(user_id, local.append)
    await watcher.subscribe(user_id, remote.append)
    last = (await publisher.publish(draft(run_id, user_id, 0))).seq
    await until(lambda: len(remote) == 1)

    await asyncio.to_thread(own_redis.halt)
    for n in range(1, 4):
        last = (await publisher.publish(draft(run_id, user_id, n), floor=last)).seq
    final = await publisher.publish(draft(run_id, user_id, 4, final=True), floor=last)
    assert [e.seq for e in local] == [1, 2, 3, 4, 5], "the own process sees them at once"
    await asyncio.to_thread(own_redis.resume)

    await until(lambda: any(e.final for e in remote))
    received = {e.seq: e for e in remote}
    assert sorted(received) == [1, 2, 3, 4, 5] and received[5].event_id == final.event_id
    assert [e.seq for e in await watcher.replay(run_id, after_seq=1)] == [2, 3, 4, 5]


async def test_a_dropped_subscriber_backfills_what_it_missed(
    make_bus, own_redis: RedisServer
) -> None:  # type: ignore[no-untyped-def]
    publisher, watcher = make_bus(), make_bus()
    await publisher.start()
    await watcher.start()
    run_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    seen: list[RunEvent] = []
    await watcher.subscribe(user_id, seen.append)
    last = (await publisher.publish(draft(run_id, user_id, 0))).seq
    await until(lambda: len(seen) == 1)
    admin = aioredis.from_url(own_redis.url)
    try:
        assert await admin.client_kill_filter(_type="pubsub") >= 1
    finally:
        await admin.aclose()
    for n in range(1, 20):
        last = (await publisher.publish(draft(run_id, user_id, n), floor=last)).seq
    await publisher.publish(draft(run_id, user_id, 20, final=True), floor=last)
    # the backfill runs beside live delivery: what it brings may land after the final event
    everything = set(range(1, 22))
    await until(lambda: {e.seq for e in seen} >= everything)
    assert {e.seq for e in seen} == everything and any(e.final for e in seen)


async def test_liveness_is_not_judged_until_the_heartbeat_record_is_old_enough(
    make_bus, own_redis: RedisServer
) -> None:  # type: ignore[no-untyped-def]
    bus = make_bus(worker_lost_after_s=2)
    await bus.start()
    await asyncio.sleep(2.1)
    await bus.heartbeat("me")
    assert await bus.live_workers() is None, "the record began just now"
    await asyncio.sleep(2.1)
    await bus.heartbeat("me")
    assert await bus.live_workers() == frozenset({"me"})

    admin = aioredis.from_url(own_redis.url)
    try:
        await admin.flushall()  # what a restart without persistence leaves
    finally:
        await admin.aclose()
    await bus.heartbeat("me")
    assert await bus.live_workers() is None


async def test_the_per_user_run_limit_holds_across_processes(make_bus) -> None:  # type: ignore[no-untyped-def]
    process_a, process_b = make_bus(), make_bus()
    await process_a.start()
    await process_b.start()
    user_id, other = uuid.uuid4().hex, uuid.uuid4().hex
    assert await process_a.claim_run_slot(user_id, "r1", 2)
    assert await process_b.claim_run_slot(user_id, "r2", 2)
    assert not await process_b.claim_run_slot(user_id, "r3", 2)
    assert not await process_a.claim_run_slot(user_id, "r3", 2)
    assert await process_a.claim_run_slot(other, "r4", 2), "limits are per user"
    assert await process_a.claim_run_slot(user_id, "r1", 2), "a held slot is claimed again"
    await process_a.release_run_slot(user_id, "r1")
    assert await process_b.claim_run_slot(user_id, "r3", 2)


async def test_a_first_event_claims_the_slot_in_the_same_call_or_is_not_published(make_bus) -> None:  # type: ignore[no-untyped-def]
    process_a, process_b = make_bus(), make_bus()
    await process_a.start()
    await process_b.start()
    user_id = uuid.uuid4().hex
    seen: list[RunEvent] = []
    await process_b.subscribe(user_id, seen.append)
    first = await process_a.publish(draft("r1", user_id, 0), slot_limit=1)
    with pytest.raises(NoFreeSlot):
        await process_b.publish(draft("r2", user_id, 0), slot_limit=1)
    assert first.seq == 1 and await process_b.replay("r2") == []
    assert not await process_b.claim_run_slot(user_id, "r2", 1), "r1 holds the one slot"
    await process_a.release_run_slot(user_id, "r1")
    second = await process_b.publish(draft("r2", user_id, 0), slot_limit=1)
    assert second.seq == 1
    await until(lambda: {e.run_id for e in seen} == {"r1", "r2"})
    assert [e.run_id for e in seen] == ["r1", "r2"]


async def test_admissions_are_counted_across_processes_and_dismissed(make_bus) -> None:  # type: ignore[no-untyped-def]
    process_a, process_b = make_bus(), make_bus()
    await process_a.start()
    await process_b.start()
    user_id = uuid.uuid4().hex
    assert await process_a.admit_run(user_id, "r1", 2)
    assert await process_b.admit_run(user_id, "r2", 2)
    assert not await process_a.admit_run(user_id, "r3", 2)
    await process_b.dismiss_run(user_id, "r2")
    assert await process_a.admit_run(user_id, "r3", 2)


async def test_an_admission_takes_a_free_run_slot_in_the_same_call(make_bus) -> None:  # type: ignore[no-untyped-def]
    process_a, process_b = make_bus(), make_bus()
    await process_a.start()
    await process_b.start()
    user_id = uuid.uuid4().hex
    assert await process_a.admit_run(user_id, "r1", 3, slot_limit=1) is Admission.HOLDS_SLOT
    assert not await process_b.claim_run_slot(user_id, "r2", 1), "r1 holds the one slot"
    assert await process_b.admit_run(user_id, "r2", 3, slot_limit=1) is Admission.ADMITTED
    assert await process_b.admit_run(user_id, "r3", 3) is Admission.ADMITTED
    assert await process_a.admit_run(user_id, "r4", 3, slot_limit=1) is Admission.REFUSED
    assert await process_b.claim_run_slot(user_id, "r5", 2), "a refused run takes no slot"
    await process_a.release_run_slot(user_id, "r1")
    assert await process_b.claim_run_slot(user_id, "r2", 2)
    assert not await process_b.claim_run_slot(user_id, "r3", 2)


async def test_a_runs_first_event_reaches_this_processes_subscribers_before_redis_answers(
    make_bus, own_redis: RedisServer
) -> None:  # type: ignore[no-untyped-def]
    """It can only be numbered 1; any later event waits for Redis to number it."""
    bus = make_bus()
    await bus.start()
    user_id = uuid.uuid4().hex
    seen: list[RunEvent] = []
    await bus.subscribe(user_id, seen.append)
    admin = aioredis.Redis.from_url(own_redis.url)
    try:
        await admin.execute_command("CLIENT", "PAUSE", 8_000, "WRITE")  # scripts wait
        first = asyncio.create_task(bus.publish(draft("r1", user_id, 0), first=True))
        later = asyncio.create_task(bus.publish(draft("r2", user_id, 0)))
        async with asyncio.timeout(2):
            while not seen:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert [(e.run_id, e.seq) for e in seen] == [("r1", 1)]
        assert not first.done() and not later.done()
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()
    assert (await first).seq == 1 and (await later).seq == 1
    assert [e.event_id for e in await bus.replay("r1")] == [seen[0].event_id]
    await until(lambda: len(seen) == 2)
    await asyncio.sleep(0.2)
    assert [(e.run_id, e.seq) for e in seen] == [("r1", 1), ("r2", 1)], "no echo delivered twice"
