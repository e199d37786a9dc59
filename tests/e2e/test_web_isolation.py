"""Two browser contexts, two users, one real server: neither ever sees the other's threads, runs,
events or usage, whether through the sidebar, the WebSocket or a pasted thread address."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.support.browser import (
    ask,
    browser_page,
    load_demo_data,
    register,
)
from tests.support.server import ServerProcess

QUESTION_A = "How can I cut my AI costs by 30%? (alice)"
QUESTION_B = "Why is my p95 latency so high? (bob)"


def record_frames(page: Page) -> list[dict[str, Any]]:
    """Every frame the server sends this page over any WebSocket, as the browser received it."""
    frames: list[dict[str, Any]] = []

    def opened(socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", opened)
    return frames


def thread_id_of(page: Page) -> str:
    return page.url.split("#/chat/")[1]


def test_two_users_never_see_each_others_threads(
    browser: Browser, web_server: ServerProcess
) -> None:
    base = web_server.base_url
    with browser_page(browser) as alice, browser_page(browser) as bob:
        frames_a = record_frames(alice)
        frames_b = record_frames(bob)
        register(alice, base)
        register(bob, base)
        load_demo_data(alice)

        ask(alice, QUESTION_A)
        run_a = alice.get_by_test_id("run")
        expect(run_a).to_have_attribute("data-state", "completed", timeout=60_000)
        ask(bob, QUESTION_B)
        run_b = bob.get_by_test_id("run")
        expect(run_b).to_have_attribute("data-state", "completed", timeout=60_000)
        thread_a, thread_b = thread_id_of(alice), thread_id_of(bob)
        run_id_a, run_id_b = run_a.get_attribute("data-run-id"), run_b.get_attribute("data-run-id")

        for page, own_question, other_question in (
            (alice, QUESTION_A, QUESTION_B),
            (bob, QUESTION_B, QUESTION_A),
        ):
            page.reload()
            expect(page.get_by_test_id("thread-item")).to_have_count(1)
            expect(page.get_by_test_id("user-message")).to_contain_text(own_question)
            assert other_question not in page.content()

        events_b = [f for f in frames_b if "seq" in f]
        assert events_b and {f["run_id"] for f in events_b} == {run_id_b}
        assert {f["run_id"] for f in frames_a if "seq" in f} == {run_id_a}
        assert not any(run_id_a in json.dumps(f) or thread_a in json.dumps(f) for f in frames_b)
        assert not any(run_id_b in json.dumps(f) or thread_b in json.dumps(f) for f in frames_a)

        bob.goto(f"{base}/#/chat/{thread_a}")
        expect(bob.get_by_test_id("thread-missing")).to_be_visible()
        assert QUESTION_A not in bob.content()
        expect(
            bob.locator(f"[data-testid=thread-item][data-thread-id='{thread_a}']")
        ).to_have_count(0)

        bob.get_by_test_id("nav-usage").click()
        expect(bob.get_by_test_id("dashboard-empty")).to_be_visible()
        alice.get_by_test_id("nav-usage").click()
        expect(alice.get_by_test_id("dashboard-totals")).to_be_visible()
