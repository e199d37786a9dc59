"""Webhook retries are kept in the app database, not in the process that started them: a server
that stops between attempts leaves them owed and the next one to run the schedule sends them;
two processes racing for the same due attempts send each one once; deleting a webhook drops
what it was owed; and the migration that adds the table goes down and up again. Every test
runs on both deployment shapes (SQLite embedded; PostgreSQL and Redis)."""

import asyncio
import hmac
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from apex.config import Settings
from apex.monitoring.webhooks import WebhookSender
from apex.store.database import Database, alembic_config
from apex.store.models import Alert, OwedDelivery, WebhookDelivery
from apex.store.repositories.alerts import AlertDraft, AlertRepository
from apex.store.repositories.owed_deliveries import OwedDeliveryRepository
from apex.store.repositories.users import UserRepository
from apex.store.repositories.webhooks import WebhookRepository
from apex.store.types import utcnow
from tests.support.alert_data import plant_over_api
from tests.support.run_harness import LiveServer, http, live_server, new_user
from tests.support.webhook_receiver import running_receiver, signature

SECRET = "whsec-" + "r" * 26
OTHER_SECRET = "whsec-" + "o" * 26
# long enough that no retry falls due while a test runs unless the test says the time has come
HOUR_BACKOFF_S = 3_600.0


async def raise_alerts(server: LiveServer, client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """A tiny daily budget and the planted usage: a budget alert and the planted anomalies."""
    await plant_over_api(client, datetime.now(UTC))
    await server.app.state.monitoring.triggers.wait_idle()
    alerts: list[dict[str, Any]] = (await client.get("/api/alerts")).json()["items"]
    assert any(a["kind"] == "budget_threshold" for a in alerts)
    return alerts


async def owed_rows(db: Database) -> list[OwedDelivery]:
    async with db.session() as session:
        return list((await session.scalars(select(OwedDelivery))).all())


async def time_passes(db: Database) -> None:
    """Every owed retry falls due now, as it would once its backoff had passed."""
    async with db.session() as session:
        await session.execute(update(OwedDelivery).values(due_at=utcnow()))
        await session.commit()


async def test_a_retry_owed_by_a_stopped_server_is_sent_after_the_restart(  # type: ignore[no-untyped-def]
    deployment,
) -> None:
    settings: Settings = deployment(
        webhook_backoff_s=HOUR_BACKOFF_S, webhooks_allow_private_networks=True
    )
    with running_receiver([500, 200]) as receiver:
        async with live_server(settings) as server:
            _user_id, token = await new_user(server)
            async with http(server, token) as client:
                hook = await client.post(
                    "/api/webhooks", json={"url": receiver.url, "secret": SECRET}
                )
                alerts = await raise_alerts(server, client)
                await asyncio.to_thread(receiver.wait_for, len(alerts))
                # the first attempts are answered 500; their records and retries are written
                async with asyncio.timeout(30):
                    while len(await owed_rows(server.app.state.db)) < len(alerts) or any(
                        row.attempt != 2 for row in await owed_rows(server.app.state.db)
                    ):
                        await asyncio.sleep(0.05)
        # the server has stopped with every retry still an hour away
        assert len(receiver.requests) == len(alerts)

        stopped = Database(settings.resolved_database_url)
        try:
            owed = await owed_rows(stopped)
            assert sorted(row.alert_id for row in owed) == sorted(a["id"] for a in alerts)
            assert all(row.due_at > utcnow() + timedelta(minutes=50) for row in owed)
            await time_passes(stopped)
        finally:
            await stopped.dispose()

        # the restarted server sends them as it starts, before any round of the schedule
        async with live_server(settings) as restarted:
            db = restarted.app.state.db
            received = await asyncio.to_thread(receiver.wait_for, 2 * len(alerts))
            await restarted.app.state.monitoring.sender.wait_idle(30)
            async with http(restarted, token) as client:
                deliveries = (
                    await client.get(f"/api/webhooks/{hook.json()['id']}/deliveries")
                ).json()["items"]
            assert await owed_rows(db) == []

    assert len(received) == 2 * len(alerts)
    by_alert: dict[str, list[bytes]] = {}
    for headers, body in received:
        assert hmac.compare_digest(headers["x-apex-signature"], signature(SECRET, body))
        by_alert.setdefault(headers["x-apex-alert"], []).append(body)
    for alert in alerts:
        first, second = by_alert[alert["id"]]
        assert first == second and json.loads(second) == alert
    assert sorted(
        (d["alert_id"], d["attempt"], d["status_code"], d["delivered"]) for d in deliveries
    ) == sorted(
        (a["id"], attempt, status, status == 200)
        for a in alerts
        for attempt, status in ((1, 500), (2, 200))
    )


async def test_a_webhook_deleted_during_an_attempt_gets_no_further_attempt(  # type: ignore[no-untyped-def]
    deployment,
) -> None:
    """Two webhooks whose every attempt is answered 500: the one deleted while its first
    attempts are in flight gets nothing more; the other is retried until its attempts run out.
    The receiver tells them apart by the secret that signed each request."""
    settings: Settings = deployment(
        webhook_backoff_s=0.05, webhook_max_attempts=3, webhooks_allow_private_networks=True
    )
    with running_receiver([500]) as receiver:
        receiver.answering.clear()
        async with live_server(settings) as server:
            monitoring = server.app.state.monitoring
            _user_id, token = await new_user(server)
            async with http(server, token) as client:
                doomed = await client.post(
                    "/api/webhooks", json={"url": receiver.url, "secret": SECRET}
                )
                kept = await client.post(
                    "/api/webhooks", json={"url": receiver.url, "secret": OTHER_SECRET}
                )
                alerts = await raise_alerts(server, client)
                await asyncio.to_thread(receiver.wait_for, 2 * len(alerts))
                deleted = await client.delete(f"/api/webhooks/{doomed.json()['id']}")
                receiver.answering.set()
                await asyncio.to_thread(receiver.wait_for, (1 + 3) * len(alerts))
                await monitoring.sender.wait_idle(60)
                resumed = await monitoring.sender.resume_due(utcnow() + timedelta(days=1))
                gone = await client.get(f"/api/webhooks/{doomed.json()['id']}/deliveries")
                kept_deliveries = (
                    await client.get(f"/api/webhooks/{kept.json()['id']}/deliveries")
                ).json()["items"]
            owed = await owed_rows(server.app.state.db)

    assert deleted.status_code == 204 and gone.status_code == 404
    assert resumed == 0 and owed == []
    signed_with = Counter(
        SECRET if hmac.compare_digest(h["x-apex-signature"], signature(SECRET, b)) else OTHER_SECRET
        for h, b in receiver.requests
    )
    assert signed_with == Counter({SECRET: len(alerts), OTHER_SECRET: 3 * len(alerts)})
    assert sorted((d["alert_id"], d["attempt"]) for d in kept_deliveries) == sorted(
        (a["id"], attempt) for a in alerts for attempt in (1, 2, 3)
    )


async def planted_alerts(db: Database, url: str, count: int) -> tuple[str, list[str], str]:
    """An account with `count` alerts and one webhook: its id, the alerts' ids, the webhook's."""
    user = await UserRepository(db).create(
        email=f"{uuid.uuid4().hex[:12]}@example.com", password_hash=None, name=None
    )
    drafts = [
        AlertDraft(kind="anomaly", cause_key=f"planted:{n}", scope={}, message="m", value_micros=n)
        for n in range(count)
    ]
    alerts = await AlertRepository(db).raise_new(user.id, drafts)
    hook = await WebhookRepository(db).create(user.id, url=url, secret=SECRET)
    return user.id, [alert.id for alert in alerts], hook.id


async def test_two_processes_send_each_due_attempt_once(database_url: str) -> None:
    """Two senders, each with its own connections to one database, resume the same due retries
    as fast as they can while each also retries what it sent itself; every attempt of every
    alert goes out once."""
    stores = [Database(database_url), Database(database_url)]
    await stores[0].upgrade()
    with running_receiver([500, 500, 200]) as receiver:
        senders = [
            WebhookSender(
                OwedDeliveryRepository(db),
                max_attempts=3,
                backoff_s=0.02,
                timeout_s=10,
                allow_private=True,
            )
            for db in stores
        ]
        try:
            user_id, alert_ids, hook_id = await planted_alerts(stores[0], receiver.url, 20)
            async with stores[0].session() as session:
                for alert_id in alert_ids:
                    body = json.dumps({"id": alert_id}).encode()
                    await OwedDeliveryRepository.owe_in(
                        session, user_id, alert_id, body, due_at=utcnow()
                    )
                await session.commit()
            async with asyncio.timeout(60):
                while len(receiver.requests) < 3 * len(alert_ids):
                    await asyncio.gather(*(sender.resume_due() for sender in senders))
                    await asyncio.sleep(0.01)
            for sender in senders:
                await sender.wait_idle(30)
            async with stores[1].session() as session:
                deliveries = (
                    await session.scalars(
                        select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook_id)
                    )
                ).all()
            owed = await owed_rows(stores[1])
        finally:
            for sender in senders:
                await sender.close()
            for db in stores:
                await db.dispose()

    sent = Counter(headers["x-apex-alert"] for headers, _body in receiver.requests)
    assert sent == Counter(dict.fromkeys(alert_ids, 3))
    assert sorted((d.alert_id, d.attempt, d.status_code) for d in deliveries) == sorted(
        (alert_id, attempt, status)
        for alert_id in alert_ids
        for attempt, status in ((1, 500), (2, 500), (3, 200))
    )
    assert owed == []


async def test_the_owed_deliveries_migration_goes_down_and_up(database: Database) -> None:
    def migrate(connection: Connection, step: str, revision: str) -> set[str]:
        config = alembic_config(database.url)
        config.attributes["connection"] = connection
        getattr(command, step)(config, revision)
        return set(inspect(connection).get_table_names())

    async with database.engine.begin() as connection:
        down = await connection.run_sync(migrate, "downgrade", "0006")
    async with database.engine.begin() as connection:
        up = await connection.run_sync(migrate, "upgrade", "head")
    assert "webhook_owed_deliveries" not in down and "webhook_deliveries" in down
    assert "webhook_owed_deliveries" in up


async def test_an_alert_is_never_stored_without_what_its_webhooks_are_owed(
    database: Database,
) -> None:
    """The alert and what each webhook is owed land in one transaction: a failure after the
    owed rows were written leaves neither, and the next evaluation raises the alert whole."""
    user = await UserRepository(database).create(
        email=f"{uuid.uuid4().hex[:12]}@example.com", password_hash=None, name=None
    )
    hook = await WebhookRepository(database).create(
        user.id, url="https://example.com/hook", secret=SECRET
    )
    draft = AlertDraft(
        kind="budget_threshold", cause_key="cause-1", scope={}, message="m", value_micros=1
    )
    owed = OwedDeliveryRepository(database)

    async def owe_then_fail(session: AsyncSession, alert: Alert) -> None:
        await owed.owe_in(session, user.id, alert.id, b"{}", due_at=utcnow())
        raise RuntimeError("stopped between the alert and its webhooks")

    with pytest.raises(RuntimeError):
        await AlertRepository(database).raise_new(user.id, [draft], with_each=owe_then_fail)
    async with database.session() as session:
        assert (await session.scalars(select(Alert).where(Alert.user_id == user.id))).all() == []
    assert await owed_rows(database) == []

    async def owe(session: AsyncSession, alert: Alert) -> None:
        await owed.owe_in(session, user.id, alert.id, b"{}", due_at=utcnow())

    raised = await AlertRepository(database).raise_new(user.id, [draft], with_each=owe)
    assert [(row.webhook_id, row.alert_id, row.attempt) for row in await owed_rows(database)] == [
        (hook.id, raised[0].id, 1)
    ]
