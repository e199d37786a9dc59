"""/ws authentication: subprotocol, header or ticket; anything else closes 1008 before any frame."""

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support.accounts import TEST_JWT_SECRET
from tests.support.run_harness import LiveServer, live_server, new_user
from tests.support.scripted_workflow import ScriptedWorkflow


@pytest.fixture
async def server(make_settings, tmp_path) -> AsyncIterator[LiveServer]:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'ws.db'}")
    async with live_server(settings, ScriptedWorkflow([])) as running:
        yield running


async def first_frame(server: LiveServer, path: str = "", **options: Any) -> dict[str, Any]:
    async with websockets.connect(
        server.ws_url + path, open_timeout=10, ping_interval=None, **options
    ) as ws:
        frame: dict[str, Any] = json.loads(await ws.recv())
        frame["_subprotocol"] = ws.subprotocol
        return frame


async def refused(server: LiveServer, path: str = "", **options: Any) -> tuple[int, str]:
    async with websockets.connect(
        server.ws_url + path, open_timeout=10, ping_interval=None, **options
    ) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_bearer_subprotocol_selects_apex_v1(server: LiveServer) -> None:
    user_id, token = await new_user(server)
    ready = await first_frame(server, subprotocols=["apex.v1", f"bearer.{token}"])
    assert ready["_subprotocol"] == "apex.v1"
    assert ready["type"] == "connection_ready" and ready["user_id"] == user_id
    assert ready["protocol"] == "apex.v1" and len(ready["connection_id"]) == 32
    assert ready["server_time"].endswith("Z")


async def test_authorization_header(server: LiveServer) -> None:
    user_id, token = await new_user(server)
    ready = await first_frame(server, additional_headers={"Authorization": f"Bearer {token}"})
    assert ready["type"] == "connection_ready" and ready["user_id"] == user_id
    assert ready["_subprotocol"] is None


def expired_token(user_id: str) -> str:
    now = int(time.time())
    return jwt.encode(
        {
            "sub": user_id,
            "iat": now - 3600,
            "exp": now - 60,
            "jti": "x",
            "typ": "access",
            "iss": "apex",
            "aud": "apex",
        },
        TEST_JWT_SECRET,
        algorithm="HS256",
    )


async def test_every_failed_authentication_closes_1008_before_any_frame(server: LiveServer) -> None:
    user_id, token = await new_user(server)
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("", {}),
        ("", {"subprotocols": ["apex.v1"]}),
        ("", {"subprotocols": ["apex.v1", "bearer.not-a-jwt"]}),
        ("", {"subprotocols": ["apex.v1", f"bearer.{expired_token(user_id)}"]}),
        ("", {"subprotocols": ["apex.v1", f"bearer.{token[:-3]}abc"]}),
        ("", {"additional_headers": {"Authorization": "Bearer nope"}}),
        ("", {"additional_headers": {"Authorization": f"Basic {token}"}}),
        ("?ticket=forged-ticket", {}),
        (f"?token={token}", {}),
        (f"?access_token={token}", {"subprotocols": ["apex.v1", f"bearer.{token}"]}),
    ]
    for path, options in attempts:
        code, reason = await refused(server, path, **options)
        assert code == 1008, (path, options)
        assert reason and len(reason) < 124


async def test_a_subprotocol_credential_wins_over_the_header(server: LiveServer) -> None:
    _user, token = await new_user(server)
    code, _reason = await refused(
        server,
        subprotocols=["apex.v1", "bearer.bad"],
        additional_headers={"Authorization": f"Bearer {token}"},
    )
    assert code == 1008
