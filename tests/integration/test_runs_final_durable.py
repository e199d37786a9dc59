"""A run's final event is kept with the run: when Redis has lost the run's event log (a restart
without persistence), SSE with `Last-Event-ID` still ends with the final event."""

import redis.asyncio as aioredis

from tests.support.accounts import make_user
from tests.support.asgi import running_app
from tests.support.run_harness import parse_sse, wait_until_ended
from tests.support.services import RedisServer


async def test_the_final_event_outlives_the_bus_log(
    make_settings,
    database_url: str,  # type: ignore[no-untyped-def]
    redis_server: RedisServer,
) -> None:
    settings = make_settings(database_url=database_url, redis_url=redis_server.url)
    async with running_app(settings) as (app, client):
        user_id, headers = await make_user(app)
        run_id = (await client.post("/api/runs", json={"text": "cost?"}, headers=headers)).json()[
            "run_id"
        ]
        await wait_until_ended(client, headers, run_id)
        everything = parse_sse(
            (await client.get(f"/api/runs/{run_id}/events", headers=headers)).text
        )
        final_seq, final = everything[-1]
        assert final["payload"]["final"] is True and final["user_id"] == user_id

        admin = aioredis.from_url(redis_server.url)
        try:
            assert (
                await admin.delete(
                    *[key async for key in admin.scan_iter("*") if run_id in key.decode()]
                )
                >= 1
            )
        finally:
            await admin.aclose()
        assert await app.state.event_bus.replay(run_id) == []

        tail = parse_sse(
            (
                await client.get(
                    f"/api/runs/{run_id}/events",
                    headers={**headers, "Last-Event-ID": str(final_seq - 3)},
                )
            ).text
        )
        assert tail == [(final_seq, final)]
        nothing = parse_sse(
            (
                await client.get(
                    f"/api/runs/{run_id}/events",
                    headers={**headers, "Last-Event-ID": str(final_seq)},
                )
            ).text
        )
        assert nothing == []
        stored = (await client.get(f"/api/runs/{run_id}", headers=headers)).json()
        assert stored["state"] == final["payload"]["state"]
