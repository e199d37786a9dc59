"""Accessibility, measured in a real browser against a real server: axe-core finds no serious or
critical violation on any page or state of the web app (sign-in, registration, an empty chat, a
run while it streams, its report, the usage page with and without data), in the light and the
dark theme and on a 375 px phone; and the golden path works by keyboard alone, with a visible
focus ring on every control it passes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.accessibility import (
    FocusedControl,
    assert_accessible,
    assert_focus_visible,
    axe_violations,
    focused_control,
)
from tests.support.browser import (
    PASSWORD,
    SERVER_ENV,
    api_get,
    ask,
    browser_page,
    register,
    unique_email,
)
from tests.support.server import ServerProcess

QUESTION = "How can I cut my AI costs by 30%?"
# The pause between two agents of a run: long enough to measure the page while the run streams.
STEP_DELAY_MS = 2500
SCHEMES = ["light", "dark"]
TERMINAL_STATES = {"completed", "cancelled", "failed", "timeout"}
RUN_TIMEOUT_MS = 90_000
EXPAND_DETAILS_JS = "document.querySelectorAll('details').forEach((d) => { d.open = true; })"


@pytest.fixture(scope="module")
def paced_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        data_dir=tmp_path_factory.mktemp("web-a11y") / "data",
        env={**SERVER_ENV, "APEX_STEP_DELAY_MS": str(STEP_DELAY_MS)},
    )
    server.start()
    yield server
    server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def demo_user(paced_server: ServerProcess) -> str:
    """An account holding the demo workload; its email."""
    email = unique_email("a11y")
    answer = httpx.post(
        paced_server.base_url + "/api/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert answer.status_code == 201, answer.text
    loaded = httpx.post(
        paced_server.base_url + "/api/usage/demo",
        json={},
        headers=bearer(answer.json()["access_token"]),
        timeout=120,
    )
    assert loaded.status_code == 200, loaded.text
    return email


def login(server: ServerProcess, email: str) -> dict[str, Any]:
    answer = httpx.post(
        server.base_url + "/api/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture(scope="module")
def answered_thread(paced_server: ServerProcess, demo_user: str) -> str:
    """A thread of the demo account whose one run finished with a report; its id."""
    base = paced_server.base_url
    headers = bearer(login(paced_server, demo_user)["access_token"])
    started = httpx.post(base + "/api/runs", json={"text": QUESTION}, headers=headers)
    assert started.status_code == 202, started.text
    url = f"{base}/api/runs/{started.json()['run_id']}"
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    run = httpx.get(url, headers=headers).json()
    while run["state"] not in TERMINAL_STATES and time.monotonic() < deadline:
        time.sleep(0.25)
        run = httpx.get(url, headers=headers).json()
    assert run["state"] == "completed" and run.get("report"), run
    return str(run["thread_id"])


@contextmanager
def app_page(
    browser: Browser,
    server: ServerProcess,
    scheme: str,
    route: str,
    email: str | None = None,
    **options: Any,
) -> Iterator[Page]:
    """The app at `route` in the given colour scheme, signed in as `email` when one is given
    (with a session of its own, so pages never share a refresh token)."""
    if email:
        pair = login(server, email)
        session = {key: pair.get(key) for key in ("access_token", "refresh_token", "user")}
        options["storage_state"] = {
            "cookies": [],
            "origins": [
                {
                    "origin": server.base_url,
                    "localStorage": [{"name": "apex.session", "value": json.dumps(session)}],
                }
            ],
        }
    with browser_page(browser, color_scheme=scheme, **options) as page:
        page.goto(f"{server.base_url}/{route}")
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") is (
            scheme == "dark"
        )
        yield page


def assert_accessible_opened(page: Page, where: str) -> None:
    """Opens every <details> first, so what a person can reveal is measured too."""
    page.evaluate(EXPAND_DETAILS_JS)
    expect(page.locator("details:not([open])")).to_have_count(0)
    assert_accessible(page, f"{where}, every <details> open")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_sign_in_and_registration_pages(
    browser: Browser, paced_server: ServerProcess, scheme: str
) -> None:
    with app_page(browser, paced_server, scheme, "#/login") as page:
        page.get_by_test_id("login-form").wait_for()
        page.wait_for_load_state("networkidle")
        assert_accessible(page, f"sign-in page, {scheme}")
        page.get_by_test_id("auth-submit").click()
        expect(page.get_by_test_id("auth-error")).not_to_be_empty()
        assert_accessible(page, f"sign-in page with an error, {scheme}")

        page.get_by_test_id("to-register").click()
        page.get_by_test_id("register-form").wait_for()
        assert_accessible(page, f"registration page, {scheme}")
        page.get_by_label("Email").fill("someone@example.com")
        page.get_by_label("Password").fill("short")
        page.get_by_test_id("auth-submit").click()
        expect(page.get_by_test_id("auth-error")).not_to_be_empty()
        assert_accessible(page, f"registration page with an error, {scheme}")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_new_account_with_no_data(
    browser: Browser, paced_server: ServerProcess, scheme: str
) -> None:
    with app_page(browser, paced_server, scheme, "#/login") as page:
        register(page, paced_server.base_url)
        expect(page.get_by_test_id("threads-empty")).to_be_visible()
        expect(page.get_by_test_id("welcome")).to_be_visible()
        expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
        assert_accessible(page, f"empty chat of a new account, {scheme}")

        page.get_by_test_id("nav-usage").click()
        expect(page.get_by_test_id("dashboard-empty")).to_be_visible()
        assert_accessible_opened(page, f"usage page without data, {scheme}")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_usage_page_with_data(
    browser: Browser, paced_server: ServerProcess, demo_user: str, scheme: str
) -> None:
    with app_page(browser, paced_server, scheme, "#/usage", email=demo_user) as page:
        expect(page.get_by_test_id("dashboard-totals")).to_be_visible()
        expect(page.get_by_test_id("chart-spend-by-day")).to_be_visible()
        expect(page.get_by_test_id("chart-by-model")).to_be_visible()
        assert_accessible_opened(page, f"usage page with data, {scheme}")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_run_while_it_streams_and_its_report(
    browser: Browser, paced_server: ServerProcess, demo_user: str, scheme: str
) -> None:
    with app_page(browser, paced_server, scheme, "#/chat", email=demo_user) as page:
        ask(page, QUESTION)
        run = page.get_by_test_id("run").last
        run.locator("[data-testid=agent-card][data-agent=triage][data-status=completed]").wait_for(
            timeout=RUN_TIMEOUT_MS
        )
        assert_accessible(page, f"a run while it streams, {scheme}")
        assert run.get_attribute("data-state") not in TERMINAL_STATES, (
            "the run ended before the page was measured: raise STEP_DELAY_MS"
        )

        expect(run).to_have_attribute("data-state", "completed", timeout=RUN_TIMEOUT_MS)
        expect(run.get_by_test_id("report")).to_be_visible()
        assert_accessible_opened(page, f"the finished report, {scheme}")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_report_and_the_threads_menu_on_a_375_px_phone(
    browser: Browser,
    paced_server: ServerProcess,
    demo_user: str,
    answered_thread: str,
    scheme: str,
) -> None:
    with app_page(
        browser,
        paced_server,
        scheme,
        f"#/chat/{answered_thread}",
        email=demo_user,
        viewport={"width": 375, "height": 800},
        is_mobile=True,
        has_touch=True,
    ) as page:
        expect(page.get_by_test_id("report")).to_be_visible()
        assert_accessible_opened(page, f"a stored report on a 375 px phone, {scheme}")

        page.get_by_test_id("menu-toggle").click()
        expect(page.get_by_test_id("sidebar")).to_be_visible()
        expect(page.get_by_test_id("thread-item").first).to_be_visible()
        assert_accessible(page, f"the threads menu open on a 375 px phone, {scheme}")


def press_until(page: Page, selector: str, key: str = "Tab", limit: int = 150) -> FocusedControl:
    """Presses `key` until the element matching `selector` has focus; every control focused on the
    way must show a visible focus ring."""
    passed: list[str] = []
    for _ in range(limit):
        page.keyboard.press(key)
        control = focused_control(page)
        if control is None:
            continue
        assert control.indicator, (
            f"keyboard focus on {control.description} shows no visible ring (after {passed})"
        )
        passed.append(control.description)
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return control
    pytest.fail(f"{key} never reached {selector} in {limit} presses; it passed {passed}")


def by_testid(name: str) -> str:
    return f"[data-testid={name}]"


def focus_is_inside(page: Page, selector: str) -> bool:
    return bool(page.evaluate("(s) => Boolean(document.activeElement.closest(s))", selector))


def clipboard_once_it_holds(page: Page, expected: str, timeout_s: float = 5.0) -> str:
    """The clipboard's text as soon as it is `expected`, else as it is after `timeout_s` (copying
    is asynchronous)."""
    deadline = time.monotonic() + timeout_s
    text = page.evaluate("navigator.clipboard.readText()")
    while text != expected and time.monotonic() < deadline:
        page.wait_for_timeout(100)
        text = page.evaluate("navigator.clipboard.readText()")
    return str(text)


def report_snippets(page: Page, run_id: str) -> list[str]:
    """The config snippets of the run's report as the server holds them, as the page shows them."""
    report = api_get(page, f"/api/runs/{run_id}")["body"]["report"]
    snippets = [action.get("config_snippet") for action in report.get("actions") or []]
    return [
        s if isinstance(s, str) else json.dumps(s, indent=2, ensure_ascii=False)
        for s in snippets
        if s
    ]


def test_the_golden_path_by_keyboard_alone(browser: Browser, paced_server: ServerProcess) -> None:
    base = paced_server.base_url
    email = unique_email("keyboard")
    with app_page(browser, paced_server, "light", "") as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        # Sign up: from the sign-in page to the registration form and through it.
        page.get_by_test_id("login-form").wait_for()
        expect(page.get_by_test_id("auth-email")).to_be_focused()
        assert_focus_visible(page)
        press_until(page, by_testid("to-register"))
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("register-form")).to_be_visible()
        assert_focus_visible(page)
        press_until(page, by_testid("auth-email"))
        page.keyboard.type(email)
        press_until(page, by_testid("auth-password"))
        page.keyboard.type(PASSWORD)
        press_until(page, by_testid("auth-submit"))
        with page.expect_response(lambda r: r.url.endswith("/api/auth/register")) as answer:
            page.keyboard.press("Enter")
        assert answer.value.status == 201
        expect(page.get_by_test_id("user-email")).to_have_text(email)

        # Load the demo data from the usage page.
        expect(page.get_by_test_id("composer-input")).to_be_focused()
        assert_focus_visible(page)
        press_until(page, by_testid("nav-usage"), "Shift+Tab")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("load-demo")).to_be_visible()
        press_until(page, by_testid("load-demo"))
        page.keyboard.press("Space")
        page.locator("[data-testid=demo-status][data-done=true]").wait_for(timeout=120_000)
        expect(page.get_by_test_id("dashboard-totals")).to_be_visible()

        # Ask, and wait for the answer.
        press_until(page, by_testid("nav-chat"), "Shift+Tab")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("composer-input")).to_be_focused()
        assert_focus_visible(page)
        page.keyboard.type(QUESTION)
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("user-message")).to_contain_text(QUESTION)
        run = page.get_by_test_id("run")
        expect(run).to_have_attribute("data-state", "completed", timeout=RUN_TIMEOUT_MS)
        expect(run.get_by_test_id("report")).to_be_visible()
        snippets = report_snippets(page, run.get_attribute("data-run-id") or "")
        assert snippets, "the demo workload's report must hold a config snippet to copy"

        # Into the report: open the sections that hold the config snippets, then copy one.
        closed = f"details:not([open]):has({by_testid('copy-snippet')}) > summary"
        for _ in range(page.locator(closed).count()):
            press_until(page, closed, "Shift+Tab")
            page.keyboard.press("Enter")
        expect(page.locator(closed)).to_have_count(0)
        press_until(page, by_testid("copy-snippet"))
        assert focus_is_inside(page, by_testid("report"))
        index = page.evaluate(
            "[...document.querySelectorAll('[data-testid=copy-snippet]')]"
            ".indexOf(document.activeElement)"
        )
        shown = run.get_by_test_id("config-snippet").nth(index).inner_text()
        page.evaluate("navigator.clipboard.writeText('')")
        page.keyboard.press("Space")
        assert clipboard_once_it_holds(page, shown) == shown
        assert shown in snippets
        assert_focus_visible(page)


def test_the_measurements_fail_on_a_page_that_breaks_them(browser: Browser) -> None:
    """Guards the measuring itself: a page with known faults is caught by both checks."""
    with browser_page(browser) as page:
        page.set_content(
            "<!doctype html><html lang='en'><title>Faults</title><body><main>"
            "<p style='color:#b8b8b8;background:#fff'>Faint text</p>"
            "<input type='text'>"
            "<button data-testid='ringed'>Ring</button>"
            "<button style='outline:none' data-testid='bare'>No ring</button>"
            "</main></body></html>"
        )
        blocking = {v.rule for v in axe_violations(page) if v.blocking}
        assert {"color-contrast", "label"} <= blocking
        with pytest.raises(pytest.fail.Exception, match="color-contrast"):
            assert_accessible(page, "a page with faults")

        press_until(page, by_testid("ringed"))
        page.keyboard.press("Tab")
        bare = focused_control(page)
        assert bare is not None and bare.testid == "bare" and bare.indicator is None
        with pytest.raises(AssertionError, match="shows no visible ring"):
            assert_focus_visible(page)
