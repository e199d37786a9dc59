"""The Webhooks page in a real browser against a real server: a webhook added in the form gets
the alerts its owner's usage raises, signed with the secret the page showed once, retried after
the receiver answers 500; each attempt is listed under the webhook; deleting it empties the
list; a URL the server refuses is reported in the form; a hostile URL stays text; the page passes
the accessibility audit in both themes and fits a 375 px phone."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.accessibility import assert_accessible
from tests.support.alert_data import expected_anomalies, planted_csv, planted_rows
from tests.support.browser import (
    SERVER_ENV,
    api_get,
    api_upload,
    browser_page,
    register,
    screenshot,
    watch,
)
from tests.support.server import ServerProcess
from tests.support.webhook_receiver import running_receiver, signature

HOSTILE_URL = 'http://127.0.0.1:9/"><img/src=x/onerror=window.__pwned=1>'
DELIVERY_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def hooks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`apex serve` retrying a failed delivery after 50 ms rather than the default 2 s, and
    allowed to call the test's receiver on loopback."""
    server = ServerProcess(
        data_dir=tmp_path_factory.mktemp("web-webhooks") / "data",
        env={
            **SERVER_ENV,
            "APEX_WEBHOOK_BACKOFF_S": "0.05",
            "APEX_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        },
    )
    server.start()
    yield server
    server.stop()


def add_webhook(page: Page, url: str) -> int:
    """Fills the form with `url` and the proposed secret, submits; the answer's status."""
    page.get_by_test_id("webhook-url").fill(url)
    with page.expect_response(
        lambda r: r.url.endswith("/api/webhooks") and r.request.method == "POST"
    ) as answer:
        page.get_by_test_id("webhook-create").click()
    return answer.value.status


def create_budget(page: Page) -> None:
    page.get_by_test_id("nav-budgets").click()
    page.get_by_test_id("budget-name").fill("tiny")
    page.get_by_test_id("budget-amount").fill("0.01")
    page.get_by_test_id("budget-period").select_option("day")
    with page.expect_response(
        lambda r: r.url.endswith("/api/budgets") and r.request.method == "POST"
    ) as answer:
        page.get_by_test_id("budget-create").click()
    assert answer.value.status == 201


def recorded_attempts(page: Page, webhook_id: str, count: int) -> list[dict[str, object]]:
    """The webhook's recorded attempts once there are `count` (a receiver sees an attempt just
    before the server records it)."""
    path = f"/api/webhooks/{webhook_id}/deliveries"
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    items = api_get(page, path)["body"]["items"]
    while len(items) < count and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        items = api_get(page, path)["body"]["items"]
    return list(items)


def test_a_webhook_gets_signed_alerts_and_lists_its_attempts(
    browser: Browser, hooks_server: ServerProcess
) -> None:
    with running_receiver([500, 200]) as receiver, browser_page(browser) as page:
        problems = watch(page)
        register(page, hooks_server.base_url)
        page.get_by_test_id("nav-webhooks").click()
        expect(page.get_by_test_id("webhooks-empty")).to_be_visible()
        secret = page.get_by_test_id("webhook-secret").input_value()
        assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 48
        assert add_webhook(page, receiver.url) == 201
        assert page.get_by_test_id("new-webhook-secret").inner_text().strip() == secret
        # the form proposes a new secret for the next webhook
        expect(page.get_by_test_id("webhook-secret")).not_to_have_value(secret)
        card = page.get_by_test_id("webhook")
        expect(card).to_have_count(1)
        expect(card.get_by_test_id("webhook-url-shown")).to_have_text(receiver.url)
        assert_accessible(page, "webhooks page showing a new secret")
        webhook_id = card.get_attribute("data-id")
        assert webhook_id

        create_budget(page)
        now = datetime.now(UTC)
        alerts = len(expected_anomalies(planted_rows(now), now)) + 1
        assert api_upload(page, "usage.csv", planted_csv(now).decode())["status"] == 200
        received = receiver.wait_for(2 * alerts, timeout=DELIVERY_TIMEOUT_S)
        for headers, body in received:
            assert hmac.compare_digest(headers["x-apex-signature"], signature(secret, body))
        raised = {a["id"] for a in api_get(page, "/api/alerts")["body"]["items"]}
        assert {json.loads(body)["id"] for _, body in received} == raised
        assert len(raised) == alerts
        attempts = recorded_attempts(page, webhook_id, 2 * alerts)
        assert sorted(
            (a["alert_id"], a["attempt"], a["status_code"], a["delivered"]) for a in attempts
        ) == sorted(
            (alert, n, status, status == 200)
            for alert in raised
            for n, status in ((1, 500), (2, 200))
        )

        # the secret was shown once: back on the page, only the URL is listed
        page.get_by_test_id("nav-chat").click()
        page.get_by_test_id("nav-webhooks").click()
        expect(card).to_have_count(1)
        expect(page.get_by_test_id("new-webhook")).to_be_hidden()
        assert secret not in page.content()

        card.get_by_test_id("webhook-attempts").locator("summary").click()
        rows = card.get_by_test_id("webhook-delivery")
        expect(rows).to_have_count(2 * alerts)
        expect(card.locator("[data-testid=webhook-delivery][data-delivered=true]")).to_have_count(
            alerts
        )
        expect(card.locator("[data-testid=webhook-delivery][data-status='500']")).to_have_count(
            alerts
        )
        expect(rows.filter(has_text="Failed: HTTP 500")).to_have_count(alerts)
        assert_accessible(page, "webhooks page with delivery attempts open")
        screenshot(page, "webhooks-attempts")

        page.on("dialog", lambda dialog: dialog.accept())
        with page.expect_response(
            lambda r: f"/api/webhooks/{webhook_id}" in r.url and r.request.method == "DELETE"
        ) as deleted:
            card.get_by_test_id("webhook-delete").click()
        assert deleted.value.status == 204
        expect(page.get_by_test_id("webhooks-empty")).to_be_visible()
        assert api_get(page, "/api/webhooks")["body"] == {"items": []}
        assert problems.exceptions == [] and problems.console_errors() == []


def test_refused_and_hostile_urls_on_a_phone_in_the_dark_theme(
    browser: Browser, hooks_server: ServerProcess
) -> None:
    with browser_page(browser, viewport={"width": 375, "height": 800}, color_scheme="dark") as page:
        register(page, hooks_server.base_url)
        page.goto(hooks_server.base_url + "/#/webhooks")
        expect(page.get_by_test_id("webhooks-empty")).to_be_visible()

        assert add_webhook(page, "ftp://example.com/hooks") == 400
        expect(page.get_by_test_id("webhook-error")).to_contain_text("http:// or https://")
        expect(page.get_by_test_id("new-webhook")).to_be_hidden()
        expect(page.get_by_test_id("webhooks-empty")).to_be_visible()

        assert add_webhook(page, HOSTILE_URL) == 201
        expect(page.get_by_test_id("webhook-error")).to_be_hidden()
        card = page.get_by_test_id("webhook")
        expect(card.get_by_test_id("webhook-url-shown")).to_have_text(HOSTILE_URL)
        card.get_by_test_id("webhook-attempts").locator("summary").click()
        expect(card.get_by_test_id("webhook-deliveries-empty")).to_be_visible()
        assert page.evaluate("window.__pwned") is None
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        assert_accessible(page, "webhooks page at 375 px, dark theme")
        screenshot(page, "webhooks-375-dark")
