"""Run slots on a shared bus: a run's shared slot comes with its admission when one is free,
else its first event claims it."""

import uuid
from collections.abc import AsyncIterator

import pytest

from apex.execution.slots import RunSlots
from apex.realtime.redis_streams import RedisEventBus
from tests.support.services import RedisServer


@pytest.fixture
async def buses(redis_server: RedisServer) -> AsyncIterator[tuple[RedisEventBus, RedisEventBus]]:
    pair = tuple(
        RedisEventBus(redis_server.url, replay_max=100, replay_ttl_s=600, worker_lost_after_s=15)
        for _ in range(2)
    )
    for bus in pair:
        await bus.start()
    yield pair  # type: ignore[misc]
    for bus in pair:
        await bus.close()


async def test_a_run_admitted_with_its_slot_opens_without_claiming_again(buses) -> None:  # type: ignore[no-untyped-def]
    here, elsewhere = buses
    slots = RunSlots(per_user=1, total=5, bus=here)
    user_id = uuid.uuid4().hex
    assert await slots.admit(user_id, "r1", 3)
    assert slots.claimed == {"r1": user_id}
    assert not await elsewhere.claim_run_slot(user_id, "x", 1), "r1 holds the user's one slot"
    asked: list[int | None] = []

    async def opening(slot_limit: int | None) -> None:
        asked.append(slot_limit)

    async with slots.hold(user_id, "r1", opening):
        assert asked == [None]
    assert slots.claimed == {}
    assert await elsewhere.claim_run_slot(user_id, "x", 1), "released when the run ended"


async def test_a_run_admitted_while_its_users_slot_is_taken_claims_it_with_its_first_event(
    buses,
) -> None:  # type: ignore[no-untyped-def]
    here, elsewhere = buses
    slots = RunSlots(per_user=1, total=5, bus=here)
    user_id = uuid.uuid4().hex
    assert await elsewhere.claim_run_slot(user_id, "elsewhere", 1)
    assert await slots.admit(user_id, "r1", 3)
    assert slots.claimed == {}, "no slot was free"
    await elsewhere.release_run_slot(user_id, "elsewhere")
    asked: list[int | None] = []

    async def opening(slot_limit: int | None) -> None:
        asked.append(slot_limit)

    async with slots.hold(user_id, "r1", opening):
        assert asked == [1]
