"""`DELETE /api/auth/me` and revocation of open sockets, on both deployment shapes (SQLite with
DuckDB and in-process backends; PostgreSQL with Redis): the account, its threads, runs, sign-ins
and usage rows are erased; its tokens and its open WebSockets stop working at once (1008), and
nothing of any other account changes."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed

from apex.store.models import Message, OidcIdentity, RefreshFamily, RefreshToken, Run, Thread, User
from tests.support.protocol_checks import error_code
from tests.support.run_harness import (
    LiveServer,
    WsClient,
    closed_with,
    live_server,
    signed_in,
    wait_until_ended,
)
from tests.support.scripted_workflow import ScriptedWorkflow, Sleep, Think

PASSWORD = "correct horse battery"
USER_TABLES = (User, Thread, Message, Run, RefreshFamily, RefreshToken, OidcIdentity)
DEMO_ROWS = 300


@pytest.fixture
async def server(deployment) -> AsyncIterator[LiveServer]:  # type: ignore[no-untyped-def]
    workflow = ScriptedWorkflow(
        [], script_for=lambda text: [Sleep(60)] if text.startswith("slow") else [Think("looking")]
    )
    async with live_server(deployment(), workflow) as running:
        yield running


async def sign_up(http: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    answer = await http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return answer.json(), email


async def with_data(http: httpx.AsyncClient, pair: dict[str, Any]) -> None:
    """A finished run (thread, messages), demo usage rows and an own price."""
    started = await http.post(
        "/api/runs", json={"text": "what did I spend?"}, headers=signed_in(pair)
    )
    assert started.status_code == 202
    await wait_until_ended(http, signed_in(pair), started.json()["run_id"])
    demo = await http.post("/api/usage/demo", json={"rows": DEMO_ROWS}, headers=signed_in(pair))
    assert demo.status_code == 200 and demo.json()["rows_accepted"] == DEMO_ROWS
    price = await http.put(
        "/api/usage/prices/my-model", json={"input": 1, "output": 2}, headers=signed_in(pair)
    )
    assert price.status_code == 200


async def rows_of(server: LiveServer, user_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with server.app.state.db.session() as session:
        for table in USER_TABLES:
            column = table.id if table is User else table.user_id
            counts[table.__tablename__] = int(
                await session.scalar(
                    select(func.count()).select_from(table).where(column == user_id)
                )
                or 0
            )
    return counts


async def test_deleting_the_account_erases_it_and_stops_its_tokens_and_sockets(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        (pair, email), (other, _) = await sign_up(http), await sign_up(http)
        user_id, other_id = pair["user"]["id"], other["user"]["id"]
        for owner in (pair, other):
            await with_data(http, owner)
        other_rows = await rows_of(server, other_id)
        other_summary = (await http.get("/api/usage/summary", headers=signed_in(other))).json()
        second_sign_in = (
            await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        ).json()
        sockets = [
            await WsClient.connect(server, signed_in["access_token"])
            for signed_in in (pair, second_sign_in)
        ]
        other_socket = await WsClient.connect(server, other["access_token"])
        await sockets[0].start_run("slow question, still running at deletion")

        deleted = await http.request(
            "DELETE", "/api/auth/me", headers=signed_in(pair), json={"id": other_id}
        )  # a body naming someone else: ignored
        assert deleted.status_code == 204 and deleted.content == b""

        for socket in sockets:  # both sign-ins' sockets, at once
            assert await closed_with(socket) == (1008, "token revoked")
        for token in (pair, second_sign_in):
            for method, path in (
                ("GET", "/api/auth/me"),
                ("GET", "/api/threads"),
                ("GET", "/api/usage/summary"),
                ("POST", "/api/usage/demo"),
                ("POST", "/api/runs"),
                ("DELETE", "/api/auth/me"),
            ):
                answer = await http.request(
                    method,
                    path,
                    headers=signed_in(token),
                    json={"text": "hi"} if method == "POST" else None,
                )
                assert answer.status_code == 401 and error_code(answer) == "token_revoked", (
                    method,
                    path,
                )
        refused = await http.post(
            "/api/auth/refresh", json={"refresh_token": second_sign_in["refresh_token"]}
        )
        assert error_code(refused) == "invalid_refresh_token"
        login = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert error_code(login) == "invalid_credentials"
        async with websockets.connect(
            server.ws_url,
            open_timeout=10,
            ping_interval=None,
            subprotocols=["apex.v1", f"bearer.{pair['access_token']}"],
        ) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

        assert set((await rows_of(server, user_id)).values()) == {0}
        ledger = server.app.state.ledger
        assert (await ledger.summary(user_id)).totals.requests == 0
        assert ledger.price_overrides(user_id) == [] and ledger.list_uploads(user_id) == []

        assert await rows_of(server, other_id) == other_rows
        assert (
            await http.get("/api/usage/summary", headers=signed_in(other))
        ).json() == other_summary
        await other_socket.send({"type": "ping"})
        assert (await other_socket.reply())["type"] == "pong"
        await other_socket.close()


async def test_the_same_email_can_sign_up_again_as_a_new_account(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        pair, email = await sign_up(http)
        assert (await http.delete("/api/auth/me", headers=signed_in(pair))).status_code == 204
        again = await http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
        assert again.status_code == 201 and again.json()["user"]["id"] != pair["user"]["id"]
        assert (await http.get("/api/auth/me", headers=signed_in(again.json()))).status_code == 200


async def test_delete_me_refuses_bad_credentials_and_oversized_bodies(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        pair, _ = await sign_up(http)
        for headers, expected in (
            ({}, "missing_token"),
            ({"Authorization": "Bearer not.a.jwt"}, "invalid_token"),
            ({"Authorization": "Basic " + pair["access_token"]}, "missing_token"),
            ({"Authorization": "Bearer " + pair["refresh_token"]}, "invalid_token"),
            ({"Authorization": "Bearer " + "x" * 5_000}, "invalid_token"),
        ):
            answer = await http.delete("/api/auth/me", headers=headers)
            assert answer.status_code == 401 and error_code(answer) == expected, headers
        huge = await http.request(
            "DELETE", "/api/auth/me", headers=signed_in(pair), content=b"{" + b" " * 20_000 + b"}"
        )
        assert huge.status_code == 413 and error_code(huge) == "payload_too_large"
        assert (await http.get("/api/auth/me", headers=signed_in(pair))).status_code == 200


async def test_logout_closes_the_sockets_opened_with_that_sign_in_only(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        pair, email = await sign_up(http)
        other_sign_in = (
            await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        ).json()
        revoked = await WsClient.connect(server, pair["access_token"])
        kept = await WsClient.connect(server, other_sign_in["access_token"])
        assert (await http.post("/api/auth/logout", headers=signed_in(pair))).status_code == 204
        assert await closed_with(revoked) == (1008, "token revoked")
        await kept.send({"type": "ping"})
        assert (await kept.reply())["type"] == "pong"

        # a refresh token presented twice ends that sign-in everywhere, sockets included
        rotated = await http.post(
            "/api/auth/refresh", json={"refresh_token": other_sign_in["refresh_token"]}
        )
        assert rotated.status_code == 200
        fresh = await WsClient.connect(server, rotated.json()["access_token"])
        replay = await http.post(
            "/api/auth/refresh", json={"refresh_token": other_sign_in["refresh_token"]}
        )
        assert error_code(replay) == "refresh_token_reused"
        for socket in (kept, fresh):
            assert await closed_with(socket) == (1008, "token revoked")
