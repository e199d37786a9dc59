"""Runs over HTTP with the built-in workflow: start (and its aliases), read, cancel, ownership,
bad input, and the Server-Sent Events stream."""

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.accounts import make_user
from tests.support.protocol_checks import check_run_stream, event_types
from tests.support.run_harness import http, live_server, new_user, parse_sse, wait_until_ended
from tests.support.scripted_workflow import ScriptedWorkflow, Signal, Sleep, Think


@pytest.mark.parametrize("alias", ["text", "content", "message"])
async def test_start_a_run_and_read_its_answer(
    app: FastAPI, client: httpx.AsyncClient, alias: str
) -> None:
    user_id, headers = await make_user(app)
    answer = await client.post(
        "/api/runs",
        json={alias: "How can I cut my AI costs by 30%?", "ignored": True},
        headers=headers,
    )
    assert answer.status_code == 202
    body = answer.json()
    assert set(body) == {"run_id", "thread_id", "state"} and body["state"] == "pending"
    run = await wait_until_ended(client, headers, body["run_id"])
    assert run["state"] == "completed" and run["thread_id"] == body["thread_id"]
    assert {"created_at", "started_at", "finished_at"} <= set(run) and "error" not in run
    assert "cost reduction" in run["final_response"] and "30%" in run["final_response"]
    assert run["report"]["question"]["intent"] == "cost_reduction"
    report = run["report"]
    assert report["by_model"] == [] and report["recommendations"] == []
    assert report["markdown"] == run["final_response"]
    assert set(report) >= {"period", "totals", "by_model", "recommendations", "actions", "markdown"}
    events = parse_sse(
        (await client.get(f"/api/runs/{body['run_id']}/events", headers=headers)).text
    )
    check_run_stream(
        [e for _id, e in events], run_id=body["run_id"], user_id=user_id, state="completed"
    )
    assert [i for i, _e in events] == [e["seq"] for _i, e in events]
    assert set(event_types([e for _i, e in events])) == {
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    }


async def test_last_event_id_resumes_the_stream(app: FastAPI, client: httpx.AsyncClient) -> None:
    _user, headers = await make_user(app)
    run_id = (await client.post("/api/runs", json={"text": "p95?"}, headers=headers)).json()[
        "run_id"
    ]
    await wait_until_ended(client, headers, run_id)
    everything = parse_sse((await client.get(f"/api/runs/{run_id}/events", headers=headers)).text)
    tail = parse_sse(
        (
            await client.get(
                f"/api/runs/{run_id}/events", headers={**headers, "Last-Event-ID": "4"}
            )
        ).text
    )
    assert [i for i, _e in tail] == list(range(5, len(everything) + 1))
    assert [e for _i, e in tail] == [e for _i, e in everything[4:]]
    bad = await client.get(
        f"/api/runs/{run_id}/events", headers={**headers, "Last-Event-ID": "four"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_last_event_id"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "missing_text"),
        ({"text": "   "}, 400, "missing_text"),
        ({"text": 42}, 400, "missing_text"),
        ({"text": "x" * 20_001}, 400, "text_too_long"),
        ({"text": "hi", "thread_id": 5}, 400, "validation_error"),
        ({"text": "hi", "thread_id": "no-such-thread"}, 404, "thread_not_found"),
        ([1, 2], 400, "validation_error"),
    ],
)
async def test_bad_run_requests_get_the_error_shape(
    app: FastAPI, client: httpx.AsyncClient, body: Any, status: int, code: str
) -> None:
    _user, headers = await make_user(app)
    answer = await client.post("/api/runs", json=body, headers=headers)
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert set(answer.json()["error"]) == {"code", "message", "details"}


async def test_a_body_that_is_not_json_is_422(app: FastAPI, client: httpx.AsyncClient) -> None:
    _user, headers = await make_user(app)
    answer = await client.post(
        "/api/runs", content=b"{text:", headers={**headers, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_json"


async def test_another_users_run_is_not_found(app: FastAPI, client: httpx.AsyncClient) -> None:
    _owner, owner = await make_user(app)
    _intruder, intruder = await make_user(app)
    run_id = (await client.post("/api/runs", json={"text": "mine"}, headers=owner)).json()["run_id"]
    for method, path in (("GET", ""), ("POST", "/cancel"), ("GET", "/events")):
        for target in (run_id, "0" * 32):
            answer = await client.request(method, f"/api/runs/{target}{path}", headers=intruder)
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "run_not_found"
    assert (await wait_until_ended(client, owner, run_id))["state"] == "completed"


async def test_cancel_is_idempotent(app: FastAPI, client: httpx.AsyncClient) -> None:
    _user, headers = await make_user(app)
    run_id = (await client.post("/api/runs", json={"text": "x"}, headers=headers)).json()["run_id"]
    done = await wait_until_ended(client, headers, run_id)
    for _ in range(2):
        answer = await client.post(f"/api/runs/{run_id}/cancel", headers=headers)
        assert answer.status_code == 202
        assert answer.json() == {"run_id": run_id, "state": done["state"]}


async def test_runs_need_a_token(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("POST", "/api/runs"),
        ("GET", "/api/runs/x"),
        ("POST", "/api/runs/x/cancel"),
        ("GET", "/api/runs/x/events"),
    ):
        assert (await client.request(method, path)).status_code == 401


async def test_sse_streams_live_and_cancel_over_http_stops_the_run(make_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reached = asyncio.Event()
    workflow = ScriptedWorkflow([Think("one"), Think("two"), Signal(reached), Sleep(30)])
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'sse.db'}")
    async with live_server(settings, workflow) as server:
        user_id, token = await new_user(server)
        async with http(server, token) as client:
            run_id = (await client.post("/api/runs", json={"text": "go"})).json()["run_id"]
            await asyncio.wait_for(reached.wait(), 10)
            received: list[tuple[int, dict[str, Any]]] = []
            async with client.stream(
                "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": "1"}
            ) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                buffer = ""
                async for chunk in stream.aiter_text():
                    buffer += chunk
                    while "\n\n" in buffer:
                        block, buffer = buffer.split("\n\n", 1)
                        received.extend(parse_sse(block + "\n\n"))
                        if len(received) == 2:
                            cancel = await client.post(f"/api/runs/{run_id}/cancel")
                            assert cancel.status_code == 202
            assert [i for i, _e in received] == [2, 3, 4]
            assert received[-1][1]["type"] == "agent_stopped"
            state = (await client.get(f"/api/runs/{run_id}")).json()["state"]
            assert state == "cancelled"
            everything = parse_sse((await client.get(f"/api/runs/{run_id}/events")).text)
            check_run_stream(
                [e for _i, e in everything], run_id=run_id, user_id=user_id, state="cancelled"
            )
