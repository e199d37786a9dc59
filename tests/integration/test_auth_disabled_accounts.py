"""Disabled accounts on both deployment shapes (SQLite with in-process backends; PostgreSQL with
Redis): disabling ends every sign-in of the account (tokens refused, sockets closed with 1008),
refuses new ones with 403 `account_disabled`, including a refresh that was not yet ended, and
enabling lets the account sign in again without reviving what was ended."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from apex.store.types import utcnow
from tests.support.protocol_checks import error_code
from tests.support.run_harness import LiveServer, WsClient, closed_with, live_server, signed_in
from tests.support.scripted_workflow import ScriptedWorkflow, Think

PASSWORD = "correct horse battery"


@pytest.fixture
async def server(deployment) -> AsyncIterator[LiveServer]:  # type: ignore[no-untyped-def]
    async with live_server(deployment(), ScriptedWorkflow([Think("looking")])) as running:
        yield running


async def sign_up(http: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, str]]:
    login = {"email": f"d{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD}
    answer = await http.post("/api/auth/register", json=login)
    assert answer.status_code == 201, answer.text
    return answer.json(), login


async def test_disabling_ends_every_sign_in_and_refuses_new_ones(server: LiveServer) -> None:
    accounts = server.app.state.accounts
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        (pair, login), (other, _) = await sign_up(http), await sign_up(http)
        second = (await http.post("/api/auth/login", json=login)).json()
        sockets = [
            await WsClient.connect(server, tokens["access_token"]) for tokens in (pair, second)
        ]
        other_socket = await WsClient.connect(server, other["access_token"])

        assert await accounts.disable(login["email"].upper()) == 2
        for socket in sockets:
            assert await closed_with(socket) == (1008, "token revoked")
        for tokens in (pair, second):
            answer = await http.get("/api/threads", headers=signed_in(tokens))
            assert answer.status_code == 401 and error_code(answer) == "token_revoked"
        refused = await http.post("/api/auth/login", json=login)
        assert refused.status_code == 403 and error_code(refused) == "account_disabled"
        assert (await http.get("/api/auth/me", headers=signed_in(other))).status_code == 200
        await other_socket.send({"type": "ping"})
        assert (await other_socket.recv_until(lambda f: f["type"] == "pong"))[-1]["type"] == "pong"
        await other_socket.close()

        await accounts.enable(login["email"])
        again = await http.post("/api/auth/login", json=login)
        assert again.status_code == 200
        assert (await http.get("/api/auth/me", headers=signed_in(again.json()))).status_code == 200
        ended = await http.post(
            "/api/auth/refresh", json={"refresh_token": second["refresh_token"]}
        )
        assert error_code(ended) == "invalid_refresh_token"


async def test_a_refresh_racing_the_disable_is_refused(server: LiveServer) -> None:
    """A sign-in that began while the account was being disabled (not among those ended)."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        pair, _login = await sign_up(http)
        await server.app.state.accounts.users.set_disabled(pair["user"]["id"], utcnow())
        answer = await http.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert answer.status_code == 403 and error_code(answer) == "account_disabled"
        assert set(answer.json()["error"]) == {"code", "message", "details"}


async def test_a_login_racing_the_disable_leaves_no_sign_in(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disable lands after the login found the account enabled and before its sign-in
    exists, so the disable does not list it: the login ends it itself and is refused."""
    accounts = server.app.state.accounts
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        pair, login = await sign_up(http)
        user_id = pair["user"]["id"]
        await accounts.auth.revoke_sessions(await accounts.users.live_sign_in_ids(user_id), "test")
        start = accounts.refresh_tokens.start

        async def disabled_meanwhile(account_id: str) -> Any:
            assert await accounts.disable(login["email"]) == 0  # nothing to end yet
            return await start(account_id)

        monkeypatch.setattr(accounts.refresh_tokens, "start", disabled_meanwhile)
        refused = await http.post("/api/auth/login", json=login)
        assert refused.status_code == 403 and error_code(refused) == "account_disabled"
        assert await accounts.users.live_sign_in_ids(user_id) == []
