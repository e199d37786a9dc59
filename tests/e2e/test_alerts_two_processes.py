"""Two real `apex serve` processes sharing PostgreSQL and Redis, each holding the same planted
usage and evaluating it after its own commit and on a fast schedule: each alert is raised once,
reaches the owner's sockets on both processes once, and its webhook once."""

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.support.alert_data import expected_anomalies, planted_csv, planted_rows
from tests.support.cluster import Endpoint, cluster  # noqa: F401 - the fixture
from tests.support.run_harness import WsClient, bearer

# rounds of the schedule both processes race for while the test watches for duplicates
WATCHED_ROUNDS = 6
ROUND_S = 0.5


@pytest.fixture
def webhook_bodies() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                bodies.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


async def test_two_processes_raise_and_deliver_each_alert_once(  # type: ignore[no-untyped-def]
    cluster, webhook_bodies
) -> None:
    hook_url, bodies = webhook_bodies
    timing = {
        "APEX_ALERTS_EVERY_S": str(ROUND_S),
        "APEX_WEBHOOK_BACKOFF_S": "0.05",
        "APEX_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
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
        assert (
            await client_a.post("/api/webhooks", json={"url": hook_url, "secret": "s" * 20})
        ).status_code == 201
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
    assert len(alerts) == expected
    assert len({a["id"] for a in alerts}) == expected
    async with asyncio.timeout(30):
        while len(bodies) < expected:
            await asyncio.sleep(0.1)
    assert sorted(b["id"] for b in bodies) == sorted(a["id"] for a in alerts)
    for socket in sockets:
        await socket.send({"type": "ping"})
        await socket.recv_until(lambda f: f["type"] == "pong")
        frames = [f["alert"]["id"] for f in socket.frames if f["type"] == "alert"]
        assert sorted(frames) == sorted(a["id"] for a in alerts)
        await socket.close()
