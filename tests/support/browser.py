"""Playwright driving the machine's Chromium against a real `apex serve` process.

The suite never downloads a browser: it launches /usr/bin/chromium, and fails with the exact
install command when it is missing, so a machine without it cannot pass silently.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.support.server import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_COMMAND = "apt-get install -y chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# `make screenshots` points this at docs/screenshots (the README's pictures); a plain test run
# writes them aside, so running the suite never changes tracked files.
SCREENSHOTS = Path(
    os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "apex-screenshots"
)
PASSWORD = "correct horse battery staple"
# Registration and login are rate limited per IP; every browser test signs up from 127.0.0.1.
SERVER_ENV = {
    "APEX_RATE_LIMIT_REGISTER_PER_MINUTE": "1000",
    "APEX_RATE_LIMIT_LOGIN_PER_MINUTE": "1000",
}


def require_chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"The browser tests drive {CHROMIUM}, which is missing. Install it with: "
            f"{INSTALL_COMMAND}",
            pytrace=False,
        )
    return CHROMIUM


def launched_chromium() -> Iterator[Browser]:
    """The machine's Chromium under Playwright, for as long as the generator is open."""
    executable = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        yield launched
        launched.close()


def served_web_app(data_dir: Path) -> Iterator[ServerProcess]:
    """A real `apex serve` process for browser tests, for as long as the generator is open."""
    server = ServerProcess(data_dir=data_dir, env=dict(SERVER_ENV))
    server.start()
    yield server
    server.stop()


@dataclass
class PageProblems:
    """Everything a page reported as wrong: console errors, uncaught exceptions, failed loads."""

    console: list[ConsoleMessage] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)

    def console_errors(self) -> list[str]:
        return [
            f"{m.text} ({m.location.get('url', '')})" for m in self.console if m.type == "error"
        ]


def watch(page: Page) -> PageProblems:
    problems = PageProblems()
    page.on("console", lambda message: problems.console.append(message))
    page.on("pageerror", lambda error: problems.exceptions.append(str(error)))
    return problems


def new_page(browser: Browser, **context_options: Any) -> tuple[BrowserContext, Page]:
    options: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}
    options.update(context_options)
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    return context, context.new_page()


@contextmanager
def browser_page(browser: Browser, **context_options: Any) -> Iterator[Page]:
    """A page in a fresh browser context (its own storage: a separate user), closed afterwards."""
    context, page = new_page(browser, **context_options)
    try:
        yield page
    finally:
        context.close()


def unique_email(prefix: str = "web") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def register(page: Page, base_url: str, email: str | None = None) -> str:
    """Creates an account through the sign-in page, as a person would, and waits for the app."""
    email = email or unique_email()
    page.goto(base_url + "/")
    page.get_by_test_id("to-register").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(lambda r: r.url.endswith("/api/auth/register")) as answer:
        page.get_by_test_id("auth-submit").click()
    assert answer.value.status == 201, f"POST /api/auth/register answered {answer.value.status}"
    page.get_by_test_id("shell").wait_for()
    return email


def stored_session(page: Page) -> dict[str, Any]:
    return json.loads(page.evaluate("localStorage.getItem('apex.session')") or "null") or {}


def api_get(page: Page, path: str) -> Any:
    """A GET with the page's own access token: what the signed-in user may see, no more."""
    return page.evaluate(
        """async (path) => {
            const token = JSON.parse(localStorage.getItem('apex.session')).access_token;
            const response = await fetch(path, {headers: {Authorization: `Bearer ${token}`}});
            return {status: response.status, body: await response.json().catch(() => null)};
        }""",
        path,
    )


def api_upload(page: Page, name: str, text: str) -> Any:
    """POST /api/usage/uploads with the page's own access token."""
    return page.evaluate(
        """async ([name, text]) => {
            const token = JSON.parse(localStorage.getItem('apex.session')).access_token;
            const form = new FormData();
            form.append('file', new File([text], name, {type: 'text/csv'}));
            const response = await fetch('/api/usage/uploads', {
              method: 'POST', headers: {Authorization: `Bearer ${token}`}, body: form});
            return {status: response.status, body: await response.json()};
        }""",
        [name, text],
    )


def screenshot(target: Any, name: str) -> Path:
    """Saves a screenshot in SCREENSHOTS (docs/screenshots/ under `make screenshots`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    target.screenshot(path=str(path))
    return path


def load_demo_data(page: Page) -> None:
    """Usage page → "Load demo data", waiting until the dashboard shows the rows."""
    page.get_by_test_id("nav-usage").click()
    page.get_by_test_id("load-demo").click()
    page.locator("[data-testid=demo-status][data-done=true]").wait_for(timeout=120_000)
    page.get_by_test_id("dashboard-totals").wait_for(timeout=30_000)


def ask(page: Page, question: str) -> None:
    """Chat → a new conversation → the question, sent with Enter."""
    page.get_by_test_id("nav-chat").click()
    composer = page.get_by_test_id("composer-input")
    composer.fill(question)
    composer.press("Enter")
    page.get_by_test_id("run").last.wait_for()
