"""One EventBus contract, proven on both implementations (in-process and Redis Streams)."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from apex.realtime.bus import EventBus, RunEndedError
from apex.realtime.events import EventDraft, EventType, RunEvent
from apex.realtime.memory import InProcessEventBus
from apex.realtime.redis_streams import RedisEventBus


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    instance: EventBus
    if request.param == "memory":
        instance = InProcessEventBus(replay_max=1_000, replay_ttl_s=600, retained_runs=100)
    else:
        instance = RedisEventBus(
            request.getfixturevalue("redis_server").url,
            replay_max=1_000,
            replay_ttl_s=600,
            worker_lost_after_s=15,
        )
    await instance.start()
    yield instance
    await instance.close()


def ids() -> tuple[str, str]:
    return uuid.uuid4().hex, uuid.uuid4().hex


def draft(run_id: str, user_id: str, n: int = 0, *, final: bool = False) -> EventDraft:
    if final:
        return EventDraft(
            type=EventType.AGENT_STOPPED,
            run_id=run_id,
            thread_id="t",
            user_id=user_id,
            agent_name="supervisor",
            payload={"final": True, "state": "cancelled"},
        )
    return EventDraft(
        type=EventType.AGENT_THINKING,
        run_id=run_id,
        thread_id="t",
        user_id=user_id,
        agent_name="supervisor",
        payload={"thought": str(n)},
    )


async def settle(received: list[RunEvent], count: int) -> None:
    async with asyncio.timeout(5):
        while len(received) < count:
            await asyncio.sleep(0.005)


async def test_publish_numbers_stores_and_fans_out_in_order(bus: EventBus) -> None:
    run_id, user_id = ids()
    received: list[RunEvent] = []
    subscription = await bus.subscribe(user_id, received.append)
    published = [await bus.publish(draft(run_id, user_id, n)) for n in range(20)]
    published.append(await bus.publish(draft(run_id, user_id, final=True)))
    await settle(received, 21)
    assert [e.seq for e in published] == list(range(1, 22))
    assert [e.wire for e in received] == [e.wire for e in published]
    assert [e.wire for e in await bus.replay(run_id)] == [e.wire for e in published]
    assert [e.seq for e in await bus.replay(run_id, after_seq=18)] == [19, 20, 21]
    await subscription.close()


async def test_concurrent_publishers_get_distinct_gap_free_seqs(bus: EventBus) -> None:
    run_id, user_id = ids()
    results = await asyncio.gather(*(bus.publish(draft(run_id, user_id, n)) for n in range(100)))
    assert sorted(e.seq for e in results) == list(range(1, 101))
    assert [e.seq for e in await bus.replay(run_id)] == list(range(1, 101))


async def test_no_event_after_the_final_one(bus: EventBus) -> None:
    run_id, user_id = ids()
    await bus.publish(draft(run_id, user_id, final=True))
    with pytest.raises(RunEndedError):
        await bus.publish(draft(run_id, user_id))
    with pytest.raises(RunEndedError):
        await bus.publish(draft(run_id, user_id, final=True))
    assert [e.seq for e in await bus.replay(run_id)] == [1]


async def test_users_never_see_each_others_events(bus: EventBus) -> None:
    (run_a, user_a), (run_b, user_b) = ids(), ids()
    seen_a: list[RunEvent] = []
    seen_b: list[RunEvent] = []
    await bus.subscribe(user_a, seen_a.append)
    await bus.subscribe(user_b, seen_b.append)
    for n in range(10):
        await bus.publish(draft(run_a, user_a, n))
        await bus.publish(draft(run_b, user_b, n))
    await settle(seen_a, 10)
    await settle(seen_b, 10)
    await asyncio.sleep(0.05)
    assert {e.user_id for e in seen_a} == {user_a} and len(seen_a) == 10
    assert {e.user_id for e in seen_b} == {user_b} and len(seen_b) == 10


async def test_a_closed_subscription_receives_nothing_more(bus: EventBus) -> None:
    run_id, user_id = ids()
    kept: list[RunEvent] = []
    dropped: list[RunEvent] = []
    await bus.subscribe(user_id, kept.append)
    subscription = await bus.subscribe(user_id, dropped.append)
    await bus.publish(draft(run_id, user_id, 1))
    await settle(dropped, 1)
    await subscription.close()
    await bus.publish(draft(run_id, user_id, 2))
    await settle(kept, 2)
    await asyncio.sleep(0.05)
    assert [e.seq for e in dropped] == [1]


async def test_cancel_requests_reach_the_handlers(bus: EventBus) -> None:
    asked: list[str] = []
    bus.on_cancel(asked.append)
    run_id, _user = ids()
    await bus.request_cancel(run_id)
    async with asyncio.timeout(5):
        while run_id not in asked:
            await asyncio.sleep(0.005)


async def test_concurrent_subscribers_of_one_user_all_receive(bus: EventBus) -> None:
    run_id, user_id = ids()
    inboxes: list[list[RunEvent]] = [[] for _ in range(20)]
    subscriptions = await asyncio.gather(
        *(bus.subscribe(user_id, inbox.append) for inbox in inboxes)
    )
    await bus.publish(draft(run_id, user_id, 1))
    for inbox in inboxes:
        await settle(inbox, 1)
    await asyncio.gather(*(s.close() for s in subscriptions[:10]))
    again = await asyncio.gather(*(bus.subscribe(user_id, inbox.append) for inbox in inboxes[:5]))
    await bus.publish(draft(run_id, user_id, 2))
    for inbox in inboxes[:5] + inboxes[10:]:
        await settle(inbox, 2)
    await asyncio.sleep(0.05)
    assert [len(inbox) for inbox in inboxes] == [2] * 5 + [1] * 5 + [2] * 10
    await asyncio.gather(*(s.close() for s in subscriptions[10:] + again))
