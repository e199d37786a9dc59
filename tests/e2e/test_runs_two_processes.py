"""Two real `apex serve` processes sharing PostgreSQL and Redis, running the built-in workflow:
a client on A receives every event of a run executing on B, `stop_run` sent to A cancels it in
B, a run whose process is killed is ended by the other (`worker_lost`), and a stopping process
ends its runs (`server_shutdown`)."""

import asyncio
import os
import signal
from typing import Any

import httpx

from tests.support.cluster import Endpoint, cluster  # noqa: F401 - the fixture
from tests.support.protocol_checks import check_run_stream, event_types
from tests.support.run_harness import WsClient, bearer
from tests.support.server import ServerProcess


async def start_run_on(server: ServerProcess, token: str, text: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url, headers=bearer(token)) as http:
        answer = await http.post("/api/runs", json={"text": text})
        assert answer.status_code == 202
        return dict(answer.json())


async def get_run(server: ServerProcess, token: str, run_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.base_url, headers=bearer(token)) as http:
        return dict((await http.get(f"/api/runs/{run_id}")).json())


async def test_events_and_cancellation_cross_processes(cluster) -> None:  # type: ignore[no-untyped-def]
    process_a = await cluster("a", APEX_STEP_DELAY_MS="400")
    process_b = await cluster("b", APEX_STEP_DELAY_MS="400")
    user_id, token = await cluster.user()
    client = await WsClient.connect(Endpoint(process_a), token)  # type: ignore[arg-type]

    finished = await start_run_on(process_b, token, "How can I cut my AI costs by 30%?")
    assert process_b.process is not None
    assert await cluster.worker_pid(finished["run_id"]) == process_b.process.pid
    events = await client.events_until_final(finished["run_id"], timeout=60)
    check_run_stream(events, run_id=finished["run_id"], user_id=user_id, state="completed")
    assert set(event_types(events)) == {
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    }
    assert "30%" in events[-1]["payload"]["final_response"]
    await client.send({"type": "resume", "run_id": finished["run_id"], "after_seq": 0})
    assert await client.events_until_final(finished["run_id"]) == events

    stopped = await start_run_on(process_b, token, "Why is my p95 latency so high?")
    await client.recv_until(
        lambda f: f.get("run_id") == stopped["run_id"] and f.get("type") == "tool_executing",
        timeout=30,
    )
    await client.send({"type": "stop_run", "run_id": stopped["run_id"]})
    events = await client.run_events(stopped["run_id"], timeout=10)
    check_run_stream(events, run_id=stopped["run_id"], user_id=user_id, state="cancelled")
    for server in (process_a, process_b):
        assert (await get_run(server, token, stopped["run_id"]))["state"] == "cancelled"
    await client.close()


async def test_a_killed_process_loses_its_runs_to_the_survivor(cluster) -> None:  # type: ignore[no-untyped-def]
    timing = {
        "APEX_WORKER_HEARTBEAT_S": "1",
        "APEX_WORKER_LOST_AFTER_S": "3",
        "APEX_STEP_DELAY_MS": "20000",
    }
    survivor = await cluster("survivor", **timing)
    doomed = await cluster("doomed", **timing)
    user_id, token = await cluster.user()
    client = await WsClient.connect(Endpoint(survivor), token)  # type: ignore[arg-type]
    run = await start_run_on(doomed, token, "cost?")
    await client.recv_until(
        lambda f: f.get("run_id") == run["run_id"] and f.get("type") == "agent_thinking", timeout=30
    )
    assert doomed.process is not None
    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait()
    events = await client.run_events(run["run_id"], timeout=30)
    check_run_stream(events, run_id=run["run_id"], user_id=user_id, state="failed")
    assert events[-1]["payload"]["error"]["code"] == "worker_lost"
    stored = await get_run(survivor, token, run["run_id"])
    assert stored["state"] == "failed" and stored["error"]["code"] == "worker_lost"
    await client.close()


async def test_a_stopping_process_ends_its_runs_as_failed(cluster) -> None:  # type: ignore[no-untyped-def]
    watcher = await cluster("watcher")
    stopping = await cluster("stopping", APEX_STEP_DELAY_MS="20000")
    user_id, token = await cluster.user()
    client = await WsClient.connect(Endpoint(watcher), token)  # type: ignore[arg-type]
    run = await start_run_on(stopping, token, "cost?")
    await client.recv_until(
        lambda f: f.get("run_id") == run["run_id"] and f.get("type") == "agent_thinking", timeout=30
    )
    await asyncio.to_thread(stopping.stop)
    assert stopping.process is not None and stopping.process.returncode in (0, -15)
    events = await client.run_events(run["run_id"], timeout=15)
    check_run_stream(events, run_id=run["run_id"], user_id=user_id, state="failed")
    assert events[-1]["payload"]["error"]["code"] == "server_shutdown"
    stored = await get_run(watcher, token, run["run_id"])
    assert stored["state"] == "failed" and stored["error"]["code"] == "server_shutdown"
    assert "Traceback" not in stopping.log_path.read_text()
    await client.close()
