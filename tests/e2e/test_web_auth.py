"""Sign-in flows in a real browser against a real server: silent refresh of an expired access
token, logout, the OIDC hand-back, and the development login and provider buttons."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
from playwright.sync_api import Browser, expect

from tests.support.browser import (
    PASSWORD,
    SERVER_ENV,
    browser_page,
    register,
    stored_session,
    unique_email,
    watch,
)
from tests.support.server import ServerProcess


def expired_copy(token: str, data_dir: Path) -> str:
    """The same claims, signed with the server's own key, but expired ten minutes ago."""
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 1200, exp=now - 600)
    secret = (data_dir / "jwt_secret").read_text().strip()
    return jwt.encode(claims, secret, algorithm="HS256")


def test_an_expired_access_token_is_refreshed_silently(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        problems = watch(page)
        email = register(page, web_server.base_url)
        session = stored_session(page)
        expired = expired_copy(session["access_token"], web_server.data_dir)
        answer = httpx.get(
            web_server.base_url + "/api/auth/me", headers={"Authorization": f"Bearer {expired}"}
        )
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "token_expired"

        page.evaluate(
            "(s) => localStorage.setItem('apex.session', JSON.stringify(s))",
            {**session, "access_token": expired},
        )
        refreshes = []
        page.on(
            "request",
            lambda r: refreshes.append(r) if r.url.endswith("/api/auth/refresh") else None,
        )
        page.reload()
        expect(page.get_by_test_id("shell")).to_be_visible()
        expect(page.get_by_test_id("user-email")).to_have_text(email)
        expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online")
        expect(page.get_by_test_id("threads-empty")).to_be_visible()
        renewed = stored_session(page)
        assert len(refreshes) == 1, "one refresh serves every call that found the token expired"
        assert renewed["access_token"] not in (expired, session["access_token"])
        assert renewed["refresh_token"] != session["refresh_token"]
        assert (
            httpx.get(
                web_server.base_url + "/api/auth/me",
                headers={"Authorization": f"Bearer {renewed['access_token']}"},
            ).status_code
            == 200
        )
        assert problems.exceptions == []
        assert page.get_by_test_id("toast").count() == 0


def test_logout_ends_the_session_on_the_server_too(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        register(page, web_server.base_url)
        token = stored_session(page)["access_token"]
        with page.expect_response(lambda r: r.url.endswith("/api/auth/logout")) as logout:
            page.get_by_test_id("logout").click()
        assert logout.value.status == 204
        expect(page.get_by_test_id("login-form")).to_be_visible()
        assert page.evaluate("localStorage.getItem('apex.session')") is None
        assert (
            httpx.get(
                web_server.base_url + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 401
        )
        page.reload()
        expect(page.get_by_test_id("login-form")).to_be_visible()


def test_signing_in_again_with_email_and_password(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        email = register(page, web_server.base_url)
        page.get_by_test_id("logout").click()
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("a wrong password")
        page.get_by_test_id("auth-submit").click()
        expect(page.get_by_test_id("auth-error")).not_to_be_empty()
        expect(page.get_by_test_id("login-form")).to_be_visible()
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Password").press("Enter")
        expect(page.get_by_test_id("user-email")).to_have_text(email)


def test_the_oidc_hand_back_signs_in_and_clears_the_tokens_from_the_address(
    browser: Browser, web_server: ServerProcess
) -> None:
    pair = httpx.post(
        web_server.base_url + "/api/auth/register",
        json={"email": unique_email("oidc"), "password": PASSWORD},
    ).json()
    with browser_page(browser) as page:
        page.goto(
            f"{web_server.base_url}/#/oidc?access_token={pair['access_token']}"
            f"&refresh_token={pair['refresh_token']}&expires_in=900"
        )
        expect(page.get_by_test_id("shell")).to_be_visible()
        expect(page.get_by_test_id("user-email")).to_have_text(pair["user"]["email"])
        assert page.url.endswith("#/chat")
        assert stored_session(page)["refresh_token"] == pair["refresh_token"]
    with browser_page(browser) as page:
        page.goto(f"{web_server.base_url}/#/oidc?error=access_denied")
        expect(page.get_by_test_id("auth-error")).to_contain_text("access_denied")
        assert page.url.endswith("#/login?error=access_denied")


def test_development_mode_offers_the_development_login_and_providers(
    browser: Browser, tmp_path: Path
) -> None:
    server = ServerProcess(
        data_dir=tmp_path / "data",
        env={
            **SERVER_ENV,
            "APEX_ENV": "development",
            "APEX_OIDC_GOOGLE_CLIENT_ID": "apex-test-client",
            "APEX_OIDC_GOOGLE_CLIENT_SECRET": "apex-test-secret",
        },
    ).start()
    try:
        with browser_page(browser) as page:
            page.goto(server.base_url + "/")
            google = page.get_by_test_id("oidc-google")
            expect(google).to_be_visible()
            assert (google.get_attribute("href") or "").endswith("/api/auth/oidc/google/login")
            page.get_by_test_id("dev-login").click()
            expect(page.get_by_test_id("shell")).to_be_visible()
            expect(page.get_by_test_id("user-email")).not_to_be_empty()
    finally:
        server.stop()


def test_the_development_login_is_absent_outside_development(
    browser: Browser, web_server: ServerProcess
) -> None:
    with browser_page(browser) as page:
        with page.expect_response(lambda r: r.url.endswith("/api/auth/providers")) as providers:
            page.goto(web_server.base_url + "/")
        assert providers.value.status == 200 and providers.value.json()["dev_login"] is False
        expect(page.get_by_test_id("login-form")).to_be_visible()
        expect(page.get_by_test_id("dev-login")).to_have_count(0)
        assert httpx.post(web_server.base_url + "/api/auth/dev-login", json={}).status_code == 404
