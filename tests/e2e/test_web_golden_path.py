"""The golden path in a real browser against a real server, click by click: register, load demo
data, ask, watch the five event types render, read the report, reload and find the history.
Also the threads sidebar (rename, delete) and the signed-in layout on a 375 px phone."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    api_get,
    ask,
    browser_page,
    load_demo_data,
    register,
    screenshot,
    watch,
)
from tests.support.server import ServerProcess

QUESTION = "How can I cut my AI costs by 30%?"
FIVE_EVENT_TYPES = {
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
}
SUB_AGENTS = ["triage", "data", "optimization", "actions", "reporting"]


def dollars(value: float) -> str:
    return f"${value:,.2f}"


def test_golden_path_click_by_click(
    browser: Browser, web_server: ServerProcess, tmp_path: Path
) -> None:
    base = web_server.base_url
    with browser_page(browser, accept_downloads=True) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        problems = watch(page)
        # 1. Register.
        email = register(page, base)
        expect(page.get_by_test_id("user-email")).to_have_text(email)
        expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
        expect(page.get_by_test_id("threads-empty")).to_be_visible()

        # 2. Load demo data; the dashboard shows the caller's own figures.
        page.get_by_test_id("nav-usage").click()
        expect(page.get_by_test_id("dashboard-empty")).to_be_visible()
        load_demo_data(page)
        summary = api_get(page, "/api/usage/summary")["body"]
        assert summary["totals"]["requests"] > 0
        expect(page.get_by_test_id("dashboard-cost")).to_contain_text(
            dollars(summary["totals"]["cost_usd"])
        )
        expect(page.get_by_test_id("dashboard-requests")).to_contain_text(
            f"{summary['totals']['requests']:,}"
        )
        expect(page.get_by_test_id("chart-spend-by-day-point")).to_have_count(
            len(summary["by_day"])
        )
        expect(page.get_by_test_id("chart-by-model-bar")).to_have_count(len(summary["by_model"]))
        expect(page.get_by_test_id("latency-table")).to_be_visible()
        expect(page.get_by_test_id("top-features")).to_be_visible()
        screenshot(page, "dashboard")

        # 3. Ask. Shift+Enter adds a line; Enter sends.
        page.get_by_test_id("nav-chat").click()
        composer = page.get_by_test_id("composer-input")
        composer.click()
        page.keyboard.type("first line")
        page.keyboard.press("Shift+Enter")
        page.keyboard.type("second line")
        expect(composer).to_have_value("first line\nsecond line")
        expect(page.get_by_test_id("user-message")).to_have_count(0)
        composer.fill(QUESTION)
        page.keyboard.press("Enter")
        expect(composer).to_have_value("")
        expect(page.get_by_test_id("user-message")).to_contain_text(QUESTION)

        # 4. The five event types render: a card per agent, thinking lines, tool chips.
        run = page.get_by_test_id("run")
        expect(run).to_have_attribute("data-state", "completed", timeout=60_000)
        assert FIVE_EVENT_TYPES <= set((run.get_attribute("data-event-types") or "").split())
        assert run.get_attribute("data-event-count") == run.get_attribute("data-last-seq")
        cards = run.get_by_test_id("agent-card")
        agents = [cards.nth(i).get_attribute("data-agent") for i in range(cards.count())]
        assert agents[0] == "supervisor"
        assert set(SUB_AGENTS) <= set(agents)
        for agent in SUB_AGENTS:
            card = run.locator(f"[data-testid=agent-card][data-agent={agent}]").first
            expect(card).to_have_attribute("data-status", "completed")
            assert card.get_attribute("data-started-seq") and card.get_attribute(
                "data-completed-seq"
            )
            assert card.get_by_test_id("thinking-line").count() >= 1, agent
        chips = run.get_by_test_id("tool-chip")
        assert chips.count() >= 1
        for i in range(chips.count()):
            chip = chips.nth(i)
            assert chip.get_attribute("data-status") in {"ok", "error", "timeout"}
            assert chip.get_attribute("data-executing-seq") and chip.get_attribute(
                "data-completed-seq"
            )
            assert (chip.get_attribute("title") or "").startswith(
                chip.get_attribute("data-tool") or "?"
            )
        expect(page.get_by_test_id("thread-item")).to_have_count(1)
        assert "#/chat/" in page.url
        run.evaluate("el => el.scrollIntoView({block: 'start'})")
        screenshot(page, "chat")

        # 5. The report: figures from the server, ranked recommendations, snippets, exports.
        run_id = run.get_attribute("data-run-id")
        report = api_get(page, f"/api/runs/{run_id}")["body"]["report"]
        assert report["recommendations"], "the demo workload must yield recommendations"
        view = run.get_by_test_id("report")
        expect(view.get_by_test_id("answer-headline")).to_have_text(report["answer"]["headline"])
        for part in ["recommendations", "action-plan", "by-model"]:
            expect(view.get_by_test_id(f"{part}-section")).not_to_have_attribute("open", "")
            view.get_by_test_id(f"{part}-toggle").click()
        expect(view.get_by_test_id("total-cost")).to_contain_text(
            dollars(report["totals"]["cost_usd"])
        )
        rows = view.get_by_test_id("recommendation-row")
        expect(rows).to_have_count(len(report["recommendations"]))
        savings = [
            float(rows.nth(i).get_attribute("data-savings") or "nan") for i in range(rows.count())
        ]
        assert savings == sorted(
            (r["monthly_savings_usd"] for r in report["recommendations"]), reverse=True
        )
        snippets = [a["config_snippet"] for a in report["actions"] if a.get("config_snippet")]
        if snippets:
            first = view.get_by_test_id("config-snippet").first.inner_text()
            view.get_by_test_id("copy-snippet").first.click()
            assert page.evaluate("navigator.clipboard.readText()") == first
            assert first in snippets
        with page.expect_download() as markdown:
            view.get_by_test_id("export-markdown").click()
        markdown.value.save_as(tmp_path / "report.md")
        assert (tmp_path / "report.md").read_text() == report["markdown"]
        with page.expect_download() as exported:
            view.get_by_test_id("export-json").click()
        exported.value.save_as(tmp_path / "report.json")
        assert json.loads((tmp_path / "report.json").read_text()) == report
        view.evaluate(
            "el => { el.querySelectorAll('details').forEach((d) => { d.open = false; });"
            " el.scrollIntoView({block: 'start'}); }"
        )
        screenshot(page, "report")

        # 6. Reload: the thread, its messages and the report are still there.
        thread_url = page.url
        page.reload()
        assert page.url == thread_url
        expect(page.get_by_test_id("user-message")).to_contain_text(QUESTION)
        answer = page.get_by_test_id("assistant-message")
        expect(answer.get_by_test_id("recommendation-row")).to_have_count(
            len(report["recommendations"])
        )
        expect(page.get_by_test_id("thread-meta")).to_contain_text("2 messages")
        assert problems.exceptions == []


def create_thread(page: Page, title: str) -> str:
    return page.evaluate(
        """async (title) => {
            const token = JSON.parse(localStorage.getItem('apex.session')).access_token;
            const response = await fetch('/api/threads', {
              method: 'POST', body: JSON.stringify({title}),
              headers: {Authorization: `Bearer ${token}`, 'Content-Type': 'application/json'}});
            return (await response.json()).id;
        }""",
        title,
    )


def test_threads_are_renamed_and_deleted_from_the_sidebar(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        register(page, web_server.base_url)
        budget = create_thread(page, "Budget review")
        latency = create_thread(page, "Latency")
        page.reload()
        titles = page.get_by_test_id("thread-title")
        expect(titles).to_have_text(["Latency", "Budget review"])
        expect(page.get_by_test_id("thread-meta").first).to_contain_text("0 messages")

        item = page.locator(f"[data-thread-id='{budget}']")
        item.get_by_test_id("rename-thread").click()
        expect(page.get_by_test_id("rename-input")).to_be_focused()
        page.keyboard.type("Dropped title")
        page.keyboard.press("Escape")
        expect(titles).to_have_text(["Latency", "Budget review"])
        item.get_by_test_id("rename-thread").click()
        page.get_by_test_id("rename-input").fill("Q4 budget review")
        page.keyboard.press("Enter")
        expect(item.get_by_test_id("thread-title")).to_have_text("Q4 budget review")
        page.reload()
        expect(
            page.locator(f"[data-thread-id='{budget}'] [data-testid=thread-title]")
        ).to_have_text("Q4 budget review")

        page.locator(f"[data-thread-id='{latency}'] [data-testid=thread-link]").click()
        page.locator(f"[data-thread-id='{latency}'] [data-testid=delete-thread]").click()
        page.get_by_test_id("confirm-cancel").click()
        expect(page.get_by_test_id("thread-item")).to_have_count(2)
        page.locator(f"[data-thread-id='{latency}'] [data-testid=delete-thread]").click()
        page.get_by_test_id("confirm-ok").click()
        expect(page.get_by_test_id("thread-item")).to_have_count(1)
        assert page.url.endswith("#/chat")
        assert api_get(page, f"/api/threads/{latency}")["status"] == 404
        page.goto(f"{web_server.base_url}/#/chat/{latency}")
        expect(page.get_by_test_id("thread-missing")).to_be_visible()
        page.reload()
        expect(page.get_by_test_id("thread-item")).to_have_count(1)


def test_the_signed_in_app_fits_a_375_px_phone(browser: Browser, web_server: ServerProcess) -> None:
    with browser_page(
        browser, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    ) as page:
        register(page, web_server.base_url)
        expect(page.get_by_test_id("sidebar")).to_be_hidden()
        page.get_by_test_id("menu-toggle").click()
        expect(page.get_by_test_id("sidebar")).to_be_visible()
        expect(page.get_by_test_id("menu-toggle")).to_have_attribute("aria-expanded", "true")
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("sidebar")).to_be_hidden()
        load_demo_data(page)
        page.get_by_test_id("chart-spend-by-day").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.evaluate("document.querySelector('main').scrollWidth") <= 375
        ask(page, QUESTION)
        expect(page.get_by_test_id("run")).to_have_attribute(
            "data-state", "completed", timeout=60_000
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.evaluate("document.querySelector('main').scrollWidth") <= 375
        composer = page.get_by_test_id("composer-input").bounding_box()
        assert composer is not None and composer["x"] + composer["width"] <= 375
