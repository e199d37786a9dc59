"""The golden path through a real `apex serve` process, over real HTTP and a real WebSocket:
register, load the demo data, ask in chat, watch every agent work, get the report, find it again
in the run and in the thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.protocol_checks import LIFECYCLE, check_run_stream, event_types
from tests.support.server import ServerProcess

QUESTION = "How can I cut my AI costs by 30%?"
AGENTS = ["triage", "data", "optimization", "actions", "reporting"]
KINDS = {
    "model_routing",
    "prompt_caching",
    "batch_api",
    "output_token_caps",
    "prompt_trimming",
    "error_retry_waste",
    "latency",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(data_dir=tmp_path / "data").start()
    yield process
    process.stop()


async def receive(connection: websockets.ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await connection.recv(decode=True))
    return frame


async def test_register_load_ask_and_get_the_report(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        registered = await http.post(
            "/api/auth/register",
            json={"email": "golden@example.com", "password": "correct horse battery staple"},
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["access_token"]
        user_id = registered.json()["user"]["id"]
        headers = {"Authorization": f"Bearer {token}"}
        loaded = await http.post(
            "/api/usage/demo", json={"rows": 20_000, "seed": 11}, headers=headers
        )
        assert loaded.status_code == 200, loaded.text
        assert loaded.json()["rows_accepted"] == 20_000

        async with websockets.connect(
            server.ws_url, subprotocols=["apex.v1", f"bearer.{token}"], open_timeout=10
        ) as ws:  # type: ignore[list-item]
            ready = await receive(ws)
            assert ready["type"] == "connection_ready" and ready["user_id"] == user_id
            await ws.send(
                json.dumps({"type": "user_message", "text": QUESTION, "client_message_id": "m1"})
            )
            accepted = await receive(ws)
            assert accepted["type"] == "message_accepted" and accepted["client_message_id"] == "m1"
            run_id, thread_id = accepted["run_id"], accepted["thread_id"]
            events: list[dict[str, Any]] = []
            while not events or events[-1]["payload"].get("final") is not True:
                frame = await receive(ws)
                if frame.get("run_id") == run_id and "seq" in frame:
                    events.append(frame)

        check_run_stream(events, run_id=run_id, user_id=user_id, state="completed")
        assert set(event_types(events)) == LIFECYCLE
        started = [e["agent_name"] for e in events if e["type"] == "agent_started"]
        assert started == ["supervisor", *AGENTS]
        for agent in AGENTS:
            own = [e["type"] for e in events if e["agent_name"] == agent]
            assert own[0] == "agent_started" and own[-1] == "agent_completed", agent
            assert "agent_thinking" in own, agent
        tool_agents = {e["agent_name"] for e in events if e["type"] == "tool_executing"}
        assert tool_agents == set(AGENTS)
        final = events[-1]
        assert final["type"] == "agent_completed" and final["payload"]["state"] == "completed"
        report = final["payload"]["report"]
        assert set(report) == {
            "question",
            "answer",
            "period",
            "totals",
            "by_model",
            "recommendations",
            "actions",
            "markdown",
        }
        assert report["totals"]["requests"] == 20_000
        question, answer = report["question"], report["answer"]
        assert question["intent"] == "cost_reduction" and question["target_pct"] == 30
        assert question["period"] == report["period"] and question["unknown"] == []
        figures = answer["figures"]
        assert set(figures) == {
            "current_monthly_usd",
            "achievable_monthly_savings_usd",
            "target_pct",
            "meets_target",
        }
        assert 0 < figures["achievable_monthly_savings_usd"] <= figures["current_monthly_usd"]
        assert figures["meets_target"] == (
            figures["achievable_monthly_savings_usd"]
            >= round(0.3 * figures["current_monthly_usd"], 2)
        )
        assert f"${figures['achievable_monthly_savings_usd']:,.2f}" in answer["headline"]
        assert report["markdown"].startswith(answer["headline"])
        assert answer["headline"].startswith(final["payload"]["result_summary"].rstrip("…"))
        assert {r["kind"] for r in report["recommendations"]} == KINDS
        for item in report["recommendations"]:
            assert set(item) == {
                "id",
                "kind",
                "title",
                "monthly_savings_usd",
                "savings_pct",
                "confidence",
                "risk",
                "traffic_share",
                "evidence",
            }
        for action in report["actions"]:
            assert set(action) == {
                "recommendation_id",
                "title",
                "steps",
                "config_snippet",
                "config_format",
                "validation",
                "rollback",
            }
        assert final["payload"]["final_response"] == report["markdown"]

        run = (await http.get(f"/api/runs/{run_id}", headers=headers)).json()
        assert run["state"] == "completed" and run["report"] == report
        assert run["final_response"] == report["markdown"]
        messages = (await http.get(f"/api/threads/{thread_id}/messages", headers=headers)).json()[
            "items"
        ]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[0]["text"] == QUESTION
        assert messages[1]["report"] == report and messages[1]["run_id"] == run_id
        summary = (await http.get("/api/usage/summary", headers=headers)).json()
        assert round(summary["totals"]["cost_usd"], 2) == round(report["totals"]["cost_usd"], 2)
    assert "Traceback" not in server.log_path.read_text()
