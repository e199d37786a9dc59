"""Runs in flight, in a real browser against a real server whose language model (a loopback
OpenAI-compatible endpoint) holds its answer: the stop button really stops the run, and a dropped
connection resumes with no duplicated and no missing line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, WebSocketRoute, expect

from tests.support.browser import (
    SERVER_ENV,
    api_get,
    ask,
    browser_page,
    load_demo_data,
    register,
    stored_session,
    watch,
)
from tests.support.llm_gate import LlmGate
from tests.support.server import ServerProcess

QUESTION = "How can I cut my AI costs by 30%?"


@pytest.fixture(scope="module")
def gate() -> Iterator[LlmGate]:
    held = LlmGate().start()
    yield held
    held.stop()


@pytest.fixture(scope="module")
def gated_server(
    tmp_path_factory: pytest.TempPathFactory, gate: LlmGate
) -> Iterator[ServerProcess]:
    server = ServerProcess(
        data_dir=tmp_path_factory.mktemp("web-runs") / "data",
        env={**SERVER_ENV, **gate.server_env()},
    )
    server.start()
    yield server
    server.stop()


def events_over_sse(base_url: str, token: str, run_id: str) -> list[dict[str, Any]]:
    """The server's own record of a run, read over SSE up to the final event."""
    events: list[dict[str, Any]] = []
    with httpx.stream(
        "GET",
        f"{base_url}/api/runs/{run_id}/events",
        timeout=30,
        headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:].strip())
            events.append(event)
            if event.get("payload", {}).get("final"):
                break
    return events


@pytest.fixture
def held(gate: LlmGate) -> Iterator[LlmGate]:
    """The gate, holding every language-model call until the test releases it (or ends)."""
    gate.hold()
    yield gate
    gate.release()


def start_held_run(page: Page, gate: LlmGate, base_url: str) -> Locator:
    register(page, base_url)
    load_demo_data(page)
    ask(page, QUESTION)
    assert gate.wait_for_request(60), "the run never called its configured language model"
    run = page.get_by_test_id("run")
    expect(run.get_by_test_id("agent-card").first).to_be_visible()
    expect(run).to_have_attribute("data-state", "running")
    return run


def test_stop_in_the_middle_of_a_run(
    browser: Browser, gated_server: ServerProcess, held: LlmGate
) -> None:
    with browser_page(browser) as page:
        problems = watch(page)
        run = start_held_run(page, held, gated_server.base_url)
        page.get_by_test_id("stop-run").click()
        expect(run).to_have_attribute("data-state", "cancelled", timeout=10_000)
        expect(page.get_by_test_id("run-status")).to_have_text("Stopped")
        expect(page.get_by_test_id("stop-run")).to_have_count(0)
        run_id = run.get_attribute("data-run-id")
        assert api_get(page, f"/api/runs/{run_id}")["body"]["state"] == "cancelled"
        last_seq = run.get_attribute("data-last-seq")
        assert "agent_stopped" in (run.get_attribute("data-event-types") or "").split()

        held.release()
        page.wait_for_timeout(1500)
        expect(run).to_have_attribute("data-last-seq", last_seq or "?")
        assert run.get_attribute("data-event-count") == last_seq
        assert api_get(page, f"/api/runs/{run_id}")["body"]["state"] == "cancelled"

        page.reload()
        expect(page.get_by_test_id("user-message")).to_contain_text(QUESTION)
        expect(page.get_by_test_id("stop-run")).to_have_count(0)
        for state in page.get_by_test_id("run").evaluate_all(
            "runs => runs.map((r) => r.dataset.state)"
        ):
            assert state == "cancelled"
        assert problems.exceptions == []


def test_a_dropped_connection_resumes_without_duplicated_or_missing_lines(
    browser: Browser, gated_server: ServerProcess, held: LlmGate
) -> None:
    connections: list[tuple[WebSocketRoute, WebSocketRoute]] = []
    sent: list[dict[str, Any]] = []

    def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        connections.append((ws, server))

        def upstream(message: str | bytes) -> None:
            sent.append(json.loads(message))
            server.send(message)

        ws.on_message(upstream)
        server.on_message(lambda message: ws.send(message))

    with browser_page(browser) as page:
        page.route_web_socket("**/ws", relay)
        run = start_held_run(page, held, gated_server.base_url)
        seen_before_drop = int(run.get_attribute("data-last-seq") or "0")
        page_side, server_side = connections[-1]
        server_side.close(code=1001, reason="network drop")
        page_side.close(code=4000, reason="network drop")
        held.release()

        expect(run).to_have_attribute("data-state", "completed", timeout=60_000)
        assert len(connections) >= 2, "the client must reconnect"
        run_id = run.get_attribute("data-run-id") or ""
        resumes = [f for f in sent if f.get("type") == "resume" and f.get("run_id") == run_id]
        assert resumes and resumes[0]["after_seq"] >= seen_before_drop

        truth = events_over_sse(gated_server.base_url, stored_session(page)["access_token"], run_id)
        assert [e["seq"] for e in truth] == list(range(1, len(truth) + 1))
        assert run.get_attribute("data-event-count") == str(len(truth))
        assert run.get_attribute("data-last-seq") == str(len(truth))
        # Each agent's lines and chips live in its own card: compare card by card, in card order.
        card_order = list(
            dict.fromkeys(e["agent_name"] for e in truth if e["type"] == "agent_started")
        )
        lines = run.get_by_test_id("thinking-line")
        assert [lines.nth(i).get_attribute("data-seq") for i in range(lines.count())] == [
            str(e["seq"])
            for agent in card_order
            for e in truth
            if e["type"] == "agent_thinking" and e["agent_name"] == agent
        ]
        chips = run.get_by_test_id("tool-chip")
        assert [chips.nth(i).get_attribute("data-tool-call-id") for i in range(chips.count())] == [
            e["payload"]["tool_call_id"]
            for agent in card_order
            for e in truth
            if e["type"] == "tool_executing" and e["agent_name"] == agent
        ]
        cards = run.get_by_test_id("agent-card")
        assert cards.count() == sum(1 for e in truth if e["type"] == "agent_started")
