"""Alerts leave the server: signed webhook POSTs to a real local receiver, retried with backoff
after it answers 500 and recorded attempt by attempt; and the `alert` frame, live over the
owner's WebSocket and nobody else's, on both deployment shapes (in-process and Redis)."""

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.alert_data import planted_csv
from tests.support.run_harness import WsClient, http, live_server, new_user

SECRET = "whsec-" + "k" * 26


@dataclass
class Receiver:
    """A webhook endpoint on loopback: answers the n-th POST of an alert with the n-th planned
    status."""

    statuses: list[int]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/apex"

    def wait_for(self, count: int, timeout: float = 30) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= count, timeout), \
                f"{len(self.requests)} of {count} deliveries arrived"
            return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(statuses=[500, 500, 200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server interface
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.arrived:
                alert = self.headers["X-Apex-Alert"]
                earlier = sum(1 for headers, _ in state.requests
                              if headers["x-apex-alert"] == alert)
                status = state.statuses[min(earlier, len(state.statuses) - 1)]
                state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                state.arrived.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


async def test_webhook_is_signed_and_retried_until_it_succeeds(  # type: ignore[no-untyped-def]
        deployment, receiver: Receiver) -> None:
    settings = deployment(webhook_backoff_s=0.05, webhook_max_attempts=4)
    async with live_server(settings) as server:
        _user_id, token = await new_user(server)
        async with http(server, token) as client:
            hook = await client.post("/api/webhooks", json={"url": receiver.url,
                                                            "secret": SECRET})
            assert hook.status_code == 201
            assert (await client.get("/api/webhooks")).json()["items"] == [hook.json()]
            budget = await client.post("/api/budgets", json={
                "name": "tiny", "amount_usd": 0.01, "period": "day"})
            assert budget.status_code == 201
            uploaded = await client.post("/api/usage/uploads", files={
                "file": ("usage.csv", planted_csv(datetime.now(UTC)), "text/csv")})
            assert uploaded.status_code == 200
            await asyncio.to_thread(receiver.wait_for, 3)
            await server.app.state.monitoring.triggers.wait_idle()
            alerts = (await client.get("/api/alerts")).json()["items"]
            received = await asyncio.to_thread(receiver.wait_for, 3 * len(alerts))
            await server.app.state.monitoring.sender.wait_idle(30)
            deliveries = (await client.get(f"/api/webhooks/{hook.json()['id']}/deliveries")
                          ).json()["items"]

    by_alert: dict[str, list[bytes]] = {}
    for headers, body in received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-apex-signature"], expected)
        assert headers["content-type"] == "application/json"
        by_alert.setdefault(json.loads(body)["id"], []).append(body)
    assert len(received) == 3 * len(alerts)
    for alert in alerts:
        bodies = by_alert[alert["id"]]
        assert len(bodies) == 3 and len(set(bodies)) == 1
        assert json.loads(bodies[0]) == alert
    assert any(a["kind"] == "budget_threshold" for a in alerts)
    attempts = sorted((d["alert_id"], d["attempt"], d["status_code"], d["delivered"])
                      for d in deliveries)
    assert attempts == sorted((a["id"], n, status, status == 200) for a in alerts
                              for n, status in ((1, 500), (2, 500), (3, 200)))


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
        deployment) -> None:
    async with live_server(deployment()) as server:
        _owner_id, owner = await new_user(server)
        _other_id, other = await new_user(server)
        first = await WsClient.connect(server, owner)
        second = await WsClient.connect(server, owner)
        stranger = await WsClient.connect(server, other)
        async with http(server, owner) as client:
            created = await client.post("/api/budgets", json={
                "name": "tiny", "amount_usd": 0.01, "period": "day"})
            assert created.status_code == 201
            await client.post("/api/usage/uploads", files={
                "file": ("usage.csv", planted_csv(datetime.now(UTC)), "text/csv")})
            frames = [await socket.recv_until(
                lambda f: f["type"] == "alert" and f["alert"]["kind"] == "budget_threshold")
                for socket in (first, second)]
            await server.app.state.monitoring.triggers.wait_idle()
            listed = (await client.get("/api/alerts")).json()["items"]
        threshold = next(a for a in listed if a["kind"] == "budget_threshold")
        for seen in frames:
            assert seen[-1] == {"type": "alert", "alert": threshold}
        await stranger.send({"type": "ping"})
        pong = await stranger.recv_until(lambda f: f["type"] == "pong")
        assert [f["type"] for f in pong] == ["pong"]
        # a client cannot raise an alert: the frame is the server's alone
        forged = {"type": "alert", "alert": {**threshold, "message": "<b>forged</b>"},
                  "client_message_id": "x"}
        await stranger.send(forged)
        refused = await stranger.reply()
        assert refused["type"] == "error" and refused["error"]["code"] == "unknown_type"
        for socket in (first, second):
            received = await alert_frames(socket, len(listed))
            assert sorted(a["id"] for a in received) == sorted(a["id"] for a in listed)
            assert all(a["message"] != "<b>forged</b>" for a in received)
        for socket in (first, second, stranger):
            await socket.close()
