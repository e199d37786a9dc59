"""Alerts leave the server: signed webhook POSTs to a real local receiver, retried with backoff
after it answers 500 and recorded attempt by attempt; webhooks that would reach the server's own
networks refused unless the deployment allows them; and the `alert` frame, live over the
owner's WebSocket and nobody else's, on both deployment shapes (in-process and Redis)."""

import asyncio
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.alert_data import plant_over_api, planted_csv
from tests.support.run_harness import WsClient, http, live_server, new_user
from tests.support.webhook_receiver import Receiver, running_receiver, signature

SECRET = "whsec-" + "k" * 26


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver([500, 500, 200]) as state:
        yield state


async def test_webhook_is_signed_and_retried_until_it_succeeds(  # type: ignore[no-untyped-def]
    deployment, receiver: Receiver
) -> None:
    settings = deployment(
        webhook_backoff_s=0.05, webhook_max_attempts=4, webhooks_allow_private_networks=True
    )
    async with live_server(settings) as server:
        _user_id, token = await new_user(server)
        async with http(server, token) as client:
            hook = await client.post("/api/webhooks", json={"url": receiver.url, "secret": SECRET})
            assert hook.status_code == 201
            assert (await client.get("/api/webhooks")).json()["items"] == [hook.json()]
            await plant_over_api(client, datetime.now(UTC))
            await asyncio.to_thread(receiver.wait_for, 3)
            await server.app.state.monitoring.triggers.wait_idle()
            alerts = (await client.get("/api/alerts")).json()["items"]
            received = await asyncio.to_thread(receiver.wait_for, 3 * len(alerts))
            await server.app.state.monitoring.sender.wait_idle(30)
            deliveries = (await client.get(f"/api/webhooks/{hook.json()['id']}/deliveries")).json()[
                "items"
            ]

    by_alert: dict[str, list[bytes]] = {}
    for headers, body in received:
        assert hmac.compare_digest(headers["x-apex-signature"], signature(SECRET, body))
        assert headers["content-type"] == "application/json"
        by_alert.setdefault(json.loads(body)["id"], []).append(body)
    assert len(received) == 3 * len(alerts)
    for alert in alerts:
        bodies = by_alert[alert["id"]]
        assert len(bodies) == 3 and len(set(bodies)) == 1
        assert json.loads(bodies[0]) == alert
    assert any(a["kind"] == "budget_threshold" for a in alerts)
    attempts = sorted(
        (d["alert_id"], d["attempt"], d["status_code"], d["delivered"]) for d in deliveries
    )
    assert attempts == sorted(
        (a["id"], n, status, status == 200)
        for a in alerts
        for n, status in ((1, 500), (2, 500), (3, 200))
    )


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::1]", "10.1.2.3", "169.254.169.254", "[::ffff:192.168.0.1]"],
)
async def test_a_webhook_to_the_servers_own_networks_is_refused(  # type: ignore[no-untyped-def]
    deployment, host: str
) -> None:
    async with live_server(deployment()) as server:
        _user_id, token = await new_user(server)
        async with http(server, token) as client:
            answer = await client.post(
                "/api/webhooks", json={"url": f"http://{host}:8080/hook", "secret": SECRET}
            )
            listed = (await client.get("/api/webhooks")).json()["items"]
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_webhook_url" and "not a public address" in error["message"]
    assert listed == []


async def test_an_attempt_that_would_reach_a_private_address_is_not_sent(  # type: ignore[no-untyped-def]
    deployment, receiver: Receiver
) -> None:
    """A name can start resolving to a private address after the webhook was created: every
    attempt checks again, records why it sent nothing, and is not retried."""
    settings = deployment(webhook_backoff_s=0.05, webhook_max_attempts=4)
    async with live_server(settings) as server:
        user_id, token = await new_user(server)
        monitoring = server.app.state.monitoring
        hook = await monitoring.webhooks.create(user_id, url=receiver.url, secret=SECRET)
        async with http(server, token) as client:
            await plant_over_api(client, datetime.now(UTC))
            await monitoring.triggers.wait_idle()
            await monitoring.sender.wait_idle(30)
            alerts = (await client.get("/api/alerts")).json()["items"]
            deliveries = (await client.get(f"/api/webhooks/{hook.id}/deliveries")).json()["items"]
    assert alerts and receiver.requests == []
    assert sorted(d["alert_id"] for d in deliveries) == sorted(a["id"] for a in alerts)
    for delivery in deliveries:
        assert (delivery["attempt"], delivery["status_code"], delivery["delivered"]) == (
            1,
            None,
            False,
        )
        assert delivery["error"].startswith("not sent: ") and "127.0.0.1" in delivery["error"]


async def alert_frames(socket: WsClient, count: int) -> list[dict[str, Any]]:
    """The alerts of the first `count` alert frames the socket receives, then of any frame
    that comes before a pong (none may be a forged one)."""

    def alerts() -> list[dict[str, Any]]:
        return [f["alert"] for f in socket.frames if f["type"] == "alert"]

    if len(alerts()) < count:
        await socket.recv_until(lambda _frame: len(alerts()) >= count)
    await socket.send({"type": "ping"})
    await socket.recv_until(lambda f: f["type"] == "pong")
    return alerts()


async def test_the_alert_frame_reaches_the_owner_and_nobody_else(  # type: ignore[no-untyped-def]
    deployment,
) -> None:
    async with live_server(deployment()) as server:
        _owner_id, owner = await new_user(server)
        _other_id, other = await new_user(server)
        first = await WsClient.connect(server, owner)
        second = await WsClient.connect(server, owner)
        stranger = await WsClient.connect(server, other)
        async with http(server, owner) as client:
            created = await client.post(
                "/api/budgets", json={"name": "tiny", "amount_usd": 0.01, "period": "day"}
            )
            assert created.status_code == 201
            await client.post(
                "/api/usage/uploads",
                files={"file": ("usage.csv", planted_csv(datetime.now(UTC)), "text/csv")},
            )
            frames = [
                await socket.recv_until(
                    lambda f: f["type"] == "alert" and f["alert"]["kind"] == "budget_threshold"
                )
                for socket in (first, second)
            ]
            await server.app.state.monitoring.triggers.wait_idle()
            listed = (await client.get("/api/alerts")).json()["items"]
        threshold = next(a for a in listed if a["kind"] == "budget_threshold")
        for seen in frames:
            assert seen[-1] == {"type": "alert", "alert": threshold}
        await stranger.send({"type": "ping"})
        pong = await stranger.recv_until(lambda f: f["type"] == "pong")
        assert [f["type"] for f in pong] == ["pong"]
        # a client cannot raise an alert: the frame is the server's alone
        forged = {
            "type": "alert",
            "alert": {**threshold, "message": "<b>forged</b>"},
            "client_message_id": "x",
        }
        await stranger.send(forged)
        refused = await stranger.reply()
        assert refused["type"] == "error" and refused["error"]["code"] == "unknown_type"
        for socket in (first, second):
            received = await alert_frames(socket, len(listed))
            assert sorted(a["id"] for a in received) == sorted(a["id"] for a in listed)
            assert all(a["message"] != "<b>forged</b>" for a in received)
        for socket in (first, second, stranger):
            await socket.close()
