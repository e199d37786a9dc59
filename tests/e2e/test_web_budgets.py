"""The budgets page and the alerts bell in a real browser against a real server: a budget made in
the form shows its spend and state, the alerts its usage raises arrive live on the bell with their
unread count, reading one lowers it, a hostile budget name stays text, and the page with the
panel open passes the accessibility audit; a budget is edited in the same form (a refused change
is reported there and changes nothing, cancelling sends nothing); the chat describes a budget it
is asked to set and links to the page without creating one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, Page, expect

from tests.support.accessibility import assert_accessible
from tests.support.alert_data import (
    expected_anomalies,
    midnight,
    planted_csv,
    planted_rows,
    spend_between,
)
from tests.support.browser import (
    api_get,
    api_upload,
    ask,
    browser_page,
    register,
    screenshot,
    watch,
)
from tests.support.server import ServerProcess

HOSTILE = '<img src=x onerror="window.__pwned=1">today'


def upload(page: Page, data: bytes) -> int:
    """POST /api/usage/uploads with the page's own access token; the answer's status."""
    return int(api_upload(page, "usage.csv", data.decode())["status"])


def create_budget(page: Page, name: str, amount: str, period: str) -> None:
    page.get_by_test_id("budget-name").fill(name)
    page.get_by_test_id("budget-amount").fill(amount)
    page.get_by_test_id("budget-period").select_option(period)
    with page.expect_response(
        lambda r: r.url.endswith("/api/budgets") and r.request.method == "POST"
    ) as answer:
        page.get_by_test_id("budget-create").click()
    assert answer.value.status == 201


def test_a_budget_and_its_alerts_in_the_bell(browser: Browser, web_server: ServerProcess) -> None:
    with browser_page(browser) as page:
        problems = watch(page)
        register(page, web_server.base_url)
        bell_count = page.get_by_test_id("alerts-unread")
        expect(bell_count).to_be_hidden()
        page.get_by_test_id("nav-budgets").click()
        expect(page.get_by_test_id("budgets-empty")).to_be_visible()
        create_budget(page, HOSTILE, "0.01", "day")
        card = page.get_by_test_id("budget")
        expect(card).to_have_count(1)
        expect(card.locator(".budget-name")).to_have_text(HOSTILE)
        expect(card).to_have_attribute("data-state", "ok")

        now = datetime.now(UTC)
        rows = planted_rows(now)
        expected = len(expected_anomalies(rows, now)) + 1
        assert upload(page, planted_csv(now)) == 200
        expect(bell_count).to_have_text(str(expected), timeout=30_000)
        # raised by one commit, told in one toast
        expect(page.get_by_test_id("toasts")).to_contain_text(f"{expected} new alerts")
        assert len(api_get(page, "/api/alerts")["body"]["items"]) == expected

        page.get_by_test_id("nav-chat").click()
        page.get_by_test_id("nav-budgets").click()
        expect(card).to_have_attribute("data-state", "exceeded")
        today = midnight(now.date())
        spent = spend_between(rows, today, today + timedelta(days=1))
        expect(card.get_by_test_id("budget-spent")).to_have_text(f"${spent:,.2f}")

        page.get_by_test_id("alerts-bell").click()
        items = page.get_by_test_id("alert-item")
        expect(items).to_have_count(expected)
        assert_accessible(page, "budgets page with the alerts panel open")
        screenshot(page, "budgets-alerts")
        unread = page.locator("[data-testid=alert-item][data-read=false]")
        expect(unread).to_have_count(expected)
        with page.expect_response(lambda r: r.url.endswith("/read")) as answer:
            items.first.click()
        assert answer.value.status == 204
        expect(bell_count).to_have_text(str(expected - 1))
        expect(unread).to_have_count(expected - 1)

        assert page.evaluate("window.__pwned") is None
        assert problems.exceptions == [] and problems.console_errors() == []


def test_the_budgets_page_reads_whole_on_a_phone(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser, viewport={"width": 375, "height": 800}) as page:
        register(page, web_server.base_url)
        page.goto(web_server.base_url + "/#/budgets")
        create_budget(page, "A budget with a rather long name for a small screen", "2000", "month")
        expect(page.get_by_test_id("budget")).to_have_count(1)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        assert_accessible(page, "budgets page at 375 px")
        screenshot(page, "budgets-375")


def save_edit(page: Page) -> int:
    """Submits the form in edit mode; the status of the PATCH it sends."""
    with page.expect_response(
        lambda r: "/api/budgets/" in r.url and r.request.method == "PATCH"
    ) as answer:
        page.get_by_test_id("budget-create").click()
    return answer.value.status


def test_a_budget_is_edited_in_the_form(browser: Browser, web_server: ServerProcess) -> None:
    with browser_page(browser) as page:
        problems = watch(page)
        register(page, web_server.base_url)
        page.goto(web_server.base_url + "/#/budgets")
        create_budget(page, "Team", "100", "month")
        card = page.get_by_test_id("budget")
        expect(card).to_have_count(1)
        budget_id = card.get_attribute("data-id")

        card.get_by_test_id("budget-edit").click()
        expect(page.get_by_test_id("budget-form-title")).to_have_text("Edit budget “Team”")
        expect(page.get_by_test_id("budget-name")).to_be_focused()
        expect(page.get_by_test_id("budget-name")).to_have_value("Team")
        expect(page.get_by_test_id("budget-amount")).to_have_value("100")
        assert_accessible(page, "budgets page editing a budget")
        screenshot(page.get_by_test_id("budget-form"), "budgets-edit")
        page.get_by_test_id("budget-name").fill("Team gpt-4o")
        page.get_by_test_id("budget-amount").fill("250.5")
        page.get_by_test_id("budget-period").select_option("day")
        page.get_by_test_id("budget-models").fill("gpt-4o, gpt-4o")
        page.get_by_test_id("budget-thresholds").fill("90, 75")
        assert save_edit(page) == 200

        expect(card).to_have_count(1)
        expect(card.locator(".budget-name")).to_have_text("Team gpt-4o")
        expect(card.get_by_test_id("budget-amount-shown")).to_have_text("$250.50")
        expect(card.get_by_test_id("budget-terms")).to_have_text(
            "Today · models: gpt-4o · alerts at 75%, 90%"
        )
        stored = api_get(page, f"/api/budgets/{budget_id}")["body"]
        assert (
            stored["name"],
            stored["amount_usd"],
            stored["period"],
            stored["scope"]["models"],
            stored["thresholds_pct"],
        ) == ("Team gpt-4o", 250.5, "day", ["gpt-4o"], [75, 90])
        # saved: the form creates again
        expect(page.get_by_test_id("budget-form-title")).to_have_text("New budget")
        expect(page.get_by_test_id("budget-name")).to_have_value("")
        expect(page.get_by_test_id("budget-thresholds")).to_have_value("50, 80, 100")
        expect(page.get_by_test_id("budget-edit-cancel")).to_be_hidden()

        # a change the server refuses is shown in the form and changes nothing
        card.get_by_test_id("budget-edit").click()
        page.get_by_test_id("budget-thresholds").fill("0")
        assert save_edit(page) == 400
        expect(page.get_by_test_id("budget-error")).to_be_visible()
        assert api_get(page, f"/api/budgets/{budget_id}")["body"]["thresholds_pct"] == [75, 90]

        # cancelling leaves the budget as it was and sends nothing
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.method) if "/api/budgets/" in r.url else None)
        page.get_by_test_id("budget-name").fill("never saved")
        page.get_by_test_id("budget-edit-cancel").click()
        expect(page.get_by_test_id("budget-error")).to_be_hidden()
        expect(page.get_by_test_id("budget-form-title")).to_have_text("New budget")
        expect(card.locator(".budget-name")).to_have_text("Team gpt-4o")
        assert sent == []
        assert len(api_get(page, "/api/budgets")["body"]["items"]) == 1
        assert problems.exceptions == []
        # the browser logs the refused PATCH itself; nothing else went wrong
        assert [f"{budget_id}" in e and "400" in e for e in problems.console_errors()] == [True]


def test_the_chat_describes_a_budget_and_links_to_the_page(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        register(page, web_server.base_url)
        assert upload(page, planted_csv(datetime.now(UTC))) == 200
        ask(page, "set a $2,000 monthly budget for gpt-4o")
        headline = page.get_by_test_id("answer-headline")
        expect(headline).to_contain_text("A monthly budget of $2,000.00 on gpt-4o", timeout=60_000)
        link = headline.get_by_test_id("answer-link")
        expect(link).to_have_text("open Budgets")
        link.click()
        expect(page.get_by_test_id("budgets-empty")).to_be_visible()
        assert api_get(page, "/api/budgets")["body"] == {"items": []}
