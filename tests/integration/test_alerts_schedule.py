"""The scheduled evaluation runs on exactly one process per round when several share Redis,
and on the one process without Redis."""

import asyncio
import uuid

from fastapi import FastAPI

from apex.monitoring.scheduler import AlertSchedule


async def test_one_schedule_per_round_among_processes_sharing_redis(
    app: FastAPI, redis_server
) -> None:  # type: ignore[no-untyped-def]
    prefix = f"t{uuid.uuid4().hex[:12]}"
    rounds: list[int] = []

    def schedule(index: int, redis_url: str | None = redis_server.url) -> AlertSchedule:
        async def users() -> list[str]:
            rounds.append(index)
            return []

        return AlertSchedule(
            app.state.monitoring.evaluator, users, every_s=30, redis_url=redis_url, prefix=prefix
        )

    schedules = [schedule(index) for index in range(4)]
    try:
        await asyncio.gather(*(s.run_round() for s in schedules))
        assert len(rounds) == 1
        await asyncio.gather(*(s.run_round() for s in schedules))
        assert len(rounds) == 1  # the round's key lives for most of the round
    finally:
        for s in schedules:
            await s.close()
    alone = schedule(9, redis_url=None)
    for _ in range(2):
        await alone.run_round()
    assert rounds.count(9) == 2
    await alone.close()
