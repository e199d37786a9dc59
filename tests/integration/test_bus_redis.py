"""What only the Redis bus does: cross-process numbering and delivery, bounds, TTL, heartbeats."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from apex.realtime.events import EventDraft, EventType, RunEvent
from apex.realtime.redis_batch import ScriptBatch
from apex.realtime.redis_streams import RedisEventBus
from tests.support.services import RedisServer, free_port


@pytest.fixture
async def make_bus(redis_server: RedisServer) -> AsyncIterator[Callable[..., RedisEventBus]]:
    started: list[RedisEventBus] = []

    def make(**options: float) -> RedisEventBus:
        values = {"replay_max": 1_000, "replay_ttl_s": 600, "worker_lost_after_s": 15}
        values.update(options)
        bus = RedisEventBus(
            redis_server.url,
            replay_max=int(values["replay_max"]),
            replay_ttl_s=int(values["replay_ttl_s"]),
            worker_lost_after_s=values["worker_lost_after_s"],
        )
        started.append(bus)
        return bus

    yield make
    for bus in started:
        await bus.close()


def draft(run_id: str, user_id: str, n: int) -> EventDraft:
    return EventDraft(
        type=EventType.AGENT_THINKING,
        run_id=run_id,
        thread_id="t",
        user_id=user_id,
        agent_name="supervisor",
        payload={"thought": str(n)},
    )


async def test_two_processes_share_one_gap_free_sequence_and_live_tail(make_bus) -> None:  # type: ignore[no-untyped-def]
    process_a, process_b = make_bus(), make_bus()
    await process_a.start()
    await process_b.start()
    run_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    tail: list[RunEvent] = []
    await process_b.subscribe(user_id, tail.append)
    await asyncio.gather(
        *(process_a.publish(draft(run_id, user_id, n)) for n in range(150)),
        *(process_b.publish(draft(run_id, user_id, n)) for n in range(150)),
    )
    async with asyncio.timeout(5):
        while len(tail) < 300:
            await asyncio.sleep(0.01)
    # each event once; a process hands its own events over directly, so the two publishers'
    # events may interleave out of order here (consumers order them: OrderedFeed)
    assert sorted(e.seq for e in tail) == list(range(1, 301))
    assert [e.seq for e in await process_a.replay(run_id, after_seq=250)] == list(range(251, 301))


async def test_streams_are_bounded_and_expire(make_bus, redis_server: RedisServer) -> None:  # type: ignore[no-untyped-def]
    bus = make_bus(replay_max=100, replay_ttl_s=120)
    await bus.start()
    run_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    for n in range(1_000):
        await bus.publish(draft(run_id, user_id, n))
    client = aioredis.from_url(redis_server.url)
    try:
        stream = f"apex:run:{{{run_id}}}:events"
        length = await client.xlen(stream)
        assert 100 <= length < 300
        assert 0 < await client.ttl(stream) <= 120
        assert 0 < await client.ttl(f"apex:run:{{{run_id}}}:meta") <= 120
    finally:
        await client.aclose()
    replayed = await bus.replay(run_id)
    assert [e.seq for e in replayed] == list(range(1_001 - len(replayed), 1_001))


async def test_heartbeats_tell_live_workers_from_lost_ones(make_bus) -> None:  # type: ignore[no-untyped-def]
    bus = make_bus(worker_lost_after_s=2)
    await bus.start()
    alive, gone = f"alive-{uuid.uuid4().hex}", f"gone-{uuid.uuid4().hex}"
    await bus.heartbeat(gone)
    await bus.heartbeat(alive)
    assert await bus.live_workers() is None, "a bus just connected must not judge anyone yet"
    for _ in range(4):
        await asyncio.sleep(1)
        await bus.heartbeat(alive)
    workers = await bus.live_workers()
    assert alive in workers and gone not in workers


async def test_a_bus_starts_while_redis_is_down(make_bus) -> None:  # type: ignore[no-untyped-def]
    bus = RedisEventBus(
        f"redis://127.0.0.1:{free_port()}/0",
        replay_max=100,
        replay_ttl_s=60,
        worker_lost_after_s=15,
    )
    await bus.start()
    await bus.close()


async def test_lua_calls_made_together_go_in_one_pipeline(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    pipelines: list[int] = []
    pipeline = client.pipeline

    def counted(*args: object, **kwargs: object) -> object:
        pipelines.append(1)
        return pipeline(*args, **kwargs)  # type: ignore[arg-type]

    client.pipeline = counted  # type: ignore[method-assign]
    batch = ScriptBatch(client)
    try:
        echo = "return ARGV[1]"
        replies = await asyncio.gather(
            *(batch.call(echo, [], [str(i)]) for i in range(20)),
            batch.call("return redis.error_reply('refused')", [], []),
            return_exceptions=True,
        )
        assert replies[:20] == [str(i).encode() for i in range(20)]
        assert "refused" in str(replies[20])
        assert len(pipelines) == 1
        first = asyncio.create_task(batch.call(echo, [], ["a"]))
        await asyncio.sleep(0.01)
        later = await asyncio.gather(*(batch.call(echo, [], [str(i)]) for i in range(5)))
        assert (await first, later) == (b"a", [str(i).encode() for i in range(5)])
        assert len(pipelines) == 3
    finally:
        await batch.close()
        await client.aclose()
