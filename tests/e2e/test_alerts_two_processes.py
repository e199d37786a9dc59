"""Two real `apex serve` processes sharing PostgreSQL and Redis, each holding the same planted
usage and evaluating it after its own commit and on a fast schedule: each alert is raised once,
reaches the owner's sockets on both processes once, and each attempt to its webhook is sent
once; a retry owed by a process that is killed is sent by the other."""

import asyncio
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select, update

from apex.store.database import Database
from apex.store.models import OwedDelivery
from tests.support.alert_data import (
    expected_anomalies,
    plant_over_api,
    planted_csv,
    planted_rows,
)
from tests.support.cluster import Endpoint, cluster  # noqa: F401 - the fixture
from tests.support.run_harness import WsClient, bearer
from tests.support.webhook_receiver import Receiver, running_receiver, signature

# rounds of the schedule both processes race for while the test watches for duplicates
WATCHED_ROUNDS = 6
ROUND_S = 0.5
SECRET = "whsec-" + "e" * 26


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook endpoint answering each alert's first attempt 500 and its second 200."""
    with running_receiver([500, 200]) as state:
        yield state


def received_alerts(receiver: Receiver) -> list[str]:
    return [json.loads(body)["id"] for _headers, body in receiver.requests]


async def attempts(client: httpx.AsyncClient, hook_id: str) -> list[tuple[str, int, int | None]]:
    items = (await client.get(f"/api/webhooks/{hook_id}/deliveries")).json()["items"]
    return sorted((d["alert_id"], d["attempt"], d["status_code"]) for d in items)


def planned(alert_ids: list[str]) -> list[tuple[str, int, int | None]]:
    return sorted((a, n, status) for a in alert_ids for n, status in ((1, 500), (2, 200)))


async def test_two_processes_raise_and_deliver_each_alert_once(  # type: ignore[no-untyped-def]
    cluster, receiver: Receiver
) -> None:
    """Each alert's retry falls due as the rounds go on, so the process that sent its first
    attempt and the one running the round may both reach for it: it is still sent once."""
    timing = {
        "APEX_ALERTS_EVERY_S": str(ROUND_S),
        "APEX_WEBHOOK_BACKOFF_S": str(ROUND_S),
        "APEX_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "APEX_REDIS_KEY_PREFIX": f"e2e{uuid.uuid4().hex[:12]}",
    }
    process_a = await cluster("a", **timing)
    process_b = await cluster("b", **timing)
    _user_id, token = await cluster.user()
    sockets = [
        await WsClient.connect(Endpoint(p), token)  # type: ignore[arg-type]
        for p in (process_a, process_b)
    ]
    now = datetime.now(UTC)
    expected = len(expected_anomalies(planted_rows(now), now)) + 1
    async with (
        httpx.AsyncClient(
            base_url=process_a.base_url, headers=bearer(token), timeout=30
        ) as client_a,
        httpx.AsyncClient(
            base_url=process_b.base_url, headers=bearer(token), timeout=30
        ) as client_b,
    ):
        hook = await client_a.post("/api/webhooks", json={"url": receiver.url, "secret": SECRET})
        assert hook.status_code == 201
        assert (
            await client_b.post(
                "/api/budgets", json={"name": "tiny", "amount_usd": 0.01, "period": "day"}
            )
        ).status_code == 201
        await asyncio.gather(
            *(
                client.post(
                    "/api/usage/uploads",
                    files={"file": ("usage.csv", planted_csv(now), "text/csv")},
                )
                for client in (client_a, client_b)
            )
        )
        async with asyncio.timeout(30):
            while len((await client_a.get("/api/alerts")).json()["items"]) < expected:
                await asyncio.sleep(0.1)
        # both processes go on evaluating the same rows, round after round
        await asyncio.sleep(WATCHED_ROUNDS * ROUND_S)
        alerts = (await client_b.get("/api/alerts", params={"limit": 100})).json()["items"]
        alert_ids = [a["id"] for a in alerts]
        async with asyncio.timeout(30):
            while len(await attempts(client_b, hook.json()["id"])) < 2 * expected:
                await asyncio.sleep(0.1)
        # the rounds go on: nothing is sent again
        await asyncio.sleep(WATCHED_ROUNDS * ROUND_S)
        recorded = await attempts(client_b, hook.json()["id"])
    assert len(alerts) == expected
    assert len(set(alert_ids)) == expected
    assert recorded == planned(alert_ids)
    assert sorted(received_alerts(receiver)) == sorted(alert_ids * 2)
    for socket in sockets:
        await socket.send({"type": "ping"})
        await socket.recv_until(lambda f: f["type"] == "pong")
        frames = [f["alert"]["id"] for f in socket.frames if f["type"] == "alert"]
        assert sorted(frames) == sorted(a["id"] for a in alerts)
        await socket.close()


async def test_a_retry_owed_by_a_killed_process_is_sent_by_another(  # type: ignore[no-untyped-def]
    cluster, receiver: Receiver
) -> None:
    """Process a raises the alerts and sends their first attempts (answered 500), then is killed
    with every retry owed; once the retries fall due, process b, running the schedule, sends
    them, signed as the first were."""
    timing = {
        "APEX_ALERTS_EVERY_S": str(ROUND_S),
        "APEX_WEBHOOK_BACKOFF_S": "3600",
        "APEX_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "APEX_REDIS_KEY_PREFIX": f"e2e{uuid.uuid4().hex[:12]}",
    }
    process_a = await cluster("a", **timing)
    _user_id, token = await cluster.user()
    now = datetime.now(UTC)
    expected = len(expected_anomalies(planted_rows(now), now)) + 1
    async with httpx.AsyncClient(
        base_url=process_a.base_url, headers=bearer(token), timeout=30
    ) as client:
        hook = await client.post("/api/webhooks", json={"url": receiver.url, "secret": SECRET})
        hook_id = hook.json()["id"]
        await plant_over_api(client, now)
        # each first attempt is recorded with its retry, an hour away, in one transaction
        async with asyncio.timeout(30):
            while len(await attempts(client, hook_id)) < expected:
                await asyncio.sleep(0.1)
    assert process_a.process is not None
    process_a.process.kill()
    process_a.process.wait()
    assert len(receiver.requests) == expected

    db = Database(process_a.env["APEX_DATABASE_URL"])
    try:
        async with db.session() as session:  # the hour passes
            owed = await session.execute(update(OwedDelivery).values(due_at=datetime.now(UTC)))
            await session.commit()
        assert owed.rowcount == expected  # type: ignore[attr-defined]
        process_b = await cluster("b", **timing)
        received = await asyncio.to_thread(receiver.wait_for, 2 * expected)
        async with httpx.AsyncClient(
            base_url=process_b.base_url, headers=bearer(token), timeout=30
        ) as client:
            alert_ids = [a["id"] for a in (await client.get("/api/alerts")).json()["items"]]
            async with asyncio.timeout(30):
                while len(await attempts(client, hook_id)) < 2 * expected:
                    await asyncio.sleep(0.1)
            recorded = await attempts(client, hook_id)
        async with db.session() as session:
            left = (await session.scalars(select(OwedDelivery))).all()
    finally:
        await db.dispose()
    for headers, body in received:
        assert hmac.compare_digest(headers["x-apex-signature"], signature(SECRET, body))
    assert sorted(received_alerts(receiver)) == sorted(alert_ids * 2)
    assert recorded == planned(alert_ids)
    assert left == []
