"""Accounts and revocations across real `apex serve` processes sharing PostgreSQL and a Redis
without persistence: a Redis restart forgets no revocation, and deleting an account or ending a
sign-in on one process stops its tokens and closes its sockets (1008) on the other."""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.support.accounts import TEST_JWT_SECRET
from tests.support.server import ServerProcess
from tests.support.services import PostgresServer, RedisServer, create_pg_database

PASSWORD = "correct horse battery"
CLOSE_TIMEOUT_S = 10.0
RECOVERY_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def deployment_env(postgres_server: PostgresServer, fault_redis: RedisServer) -> dict[str, str]:
    return {
        "APEX_DATABASE_URL": asyncio.run(create_pg_database(postgres_server)),
        "APEX_REDIS_URL": fault_redis.url,
        "APEX_REDIS_KEY_PREFIX": f"f{uuid.uuid4().hex[:12]}",
        "APEX_JWT_SECRET": TEST_JWT_SECRET,
    }


@pytest.fixture(scope="module")
def two_processes(
    tmp_path_factory: pytest.TempPathFactory, deployment_env: dict[str, str]
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    tmp = tmp_path_factory.mktemp("accounts")
    first = ServerProcess(data_dir=tmp / "a", env=dict(deployment_env)).start()
    try:
        second = ServerProcess(data_dir=tmp / "b", env=dict(deployment_env)).start()
    except Exception:
        first.stop()
        raise
    yield first, second
    for server in (first, second):
        server.stop()
        assert "Traceback" not in server.log_path.read_text()


def register(server: ServerProcess, email: str | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/api/auth/register",
        timeout=10,
        json={"email": email or f"f{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def me(server: ServerProcess, pair: dict[str, Any]) -> httpx.Response:
    return httpx.get(f"{server.base_url}/api/auth/me", headers=bearer(pair), timeout=10)


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def test_revocations_outlive_a_redis_restart_without_persistence(
    two_processes: tuple[ServerProcess, ServerProcess],
    fault_redis: RedisServer,
    deployment_env: dict[str, str],
    tmp_path: Path,
) -> None:
    a, _ = two_processes
    logged_out, family_revoked, kept = register(a), register(a), register(a)
    assert (
        httpx.post(
            f"{a.base_url}/api/auth/logout", headers=bearer(logged_out), timeout=10
        ).status_code
        == 204
    )
    rotated = httpx.post(
        f"{a.base_url}/api/auth/refresh",
        timeout=10,
        json={"refresh_token": family_revoked["refresh_token"]},
    )
    replayed = httpx.post(
        f"{a.base_url}/api/auth/refresh",
        timeout=10,
        json={"refresh_token": family_revoked["refresh_token"]},
    )
    assert rotated.status_code == 200 and code(replayed) == "refresh_token_reused"

    fault_redis.restart()  # empty: nothing of the revocations is left in Redis
    late = ServerProcess(data_dir=tmp_path / "late", env=dict(deployment_env)).start()
    try:
        for server in (a, late):
            for pair in (logged_out, family_revoked, rotated.json()):
                answer = me(server, pair)
                assert answer.status_code == 401 and code(answer) == "token_revoked"
            assert me(server, kept).status_code == 200
    finally:
        late.stop()
    assert "Traceback" not in late.log_path.read_text()


def offered(pair: dict[str, Any]) -> list[Subprotocol]:
    return [Subprotocol("apex.v1"), Subprotocol(f"bearer.{pair['access_token']}")]


async def connect(server: ServerProcess, pair: dict[str, Any]) -> websockets.ClientConnection:
    ws = await websockets.connect(
        server.ws_url, open_timeout=10, ping_interval=None, subprotocols=offered(pair)
    )
    assert json.loads(await ws.recv())["type"] == "connection_ready"
    return ws


async def close_of(ws: websockets.ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def refused_at_handshake(server: ServerProcess, pair: dict[str, Any]) -> int:
    async with websockets.connect(
        server.ws_url, open_timeout=10, ping_interval=None, subprotocols=offered(pair)
    ) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_a_deleted_account_is_refused_and_its_sockets_closed_on_every_process(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_processes
    doomed, other = register(a), register(a)
    sockets = [await connect(server, doomed) for server in (a, b)]
    other_socket = await connect(b, other)

    async with httpx.AsyncClient(timeout=10) as http:
        deleted = await http.delete(f"{a.base_url}/api/auth/me", headers=bearer(doomed))
        assert deleted.status_code == 204
        for ws in sockets:
            assert await close_of(ws) == (1008, "token revoked")
        for server in (a, b):
            for method, path in (
                ("GET", "/api/auth/me"),
                ("GET", "/api/threads"),
                ("POST", "/api/usage/demo"),
            ):
                answer = await http.request(method, server.base_url + path, headers=bearer(doomed))
                assert answer.status_code == 401 and code(answer) == "token_revoked", path
            assert await refused_at_handshake(server, doomed) == 1008
        await other_socket.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(other_socket.recv(), 10))["type"] in {
            "pong",
            "heartbeat",
        }
        await other_socket.close()


async def test_logout_on_one_process_closes_that_tokens_socket_on_the_other(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_processes
    pair = register(a)
    ws = await connect(b, pair)
    async with httpx.AsyncClient(timeout=10) as http:
        assert (
            await http.post(f"{a.base_url}/api/auth/logout", headers=bearer(pair))
        ).status_code == 204
    assert await close_of(ws) == (1008, "token revoked")


def users_command(
    env: dict[str, str], tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """`apex users …` as an operator runs it, next to the serving processes."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APEX_")}
    return subprocess.run(
        [sys.executable, "-m", "apex", "users", *args],
        text=True,
        capture_output=True,
        timeout=60,
        env={**clean, "APEX_ENV": "test", "APEX_DATA_DIR": str(tmp_path), **env},
    )


async def test_a_disabled_account_is_refused_and_its_sockets_closed_on_every_process(
    two_processes: tuple[ServerProcess, ServerProcess],
    deployment_env: dict[str, str],
    tmp_path: Path,
) -> None:
    a, b = two_processes
    pair, other = register(a), register(a)
    login = {"email": pair["user"]["email"], "password": PASSWORD}
    second = httpx.post(f"{b.base_url}/api/auth/login", json=login, timeout=10)
    assert second.status_code == 200
    sockets = [await connect(a, pair), await connect(b, second.json())]
    other_socket = await connect(b, other)

    disabled = await asyncio.to_thread(
        users_command, deployment_env, tmp_path, "disable", login["email"]
    )
    assert disabled.returncode == 0, disabled.stderr
    assert "2 sign-ins ended" in disabled.stdout
    for ws in sockets:
        assert await close_of(ws) == (1008, "token revoked")
    async with httpx.AsyncClient(timeout=10) as http:
        for server in (a, b):
            for tokens in (pair, second.json()):
                answer = await http.get(f"{server.base_url}/api/auth/me", headers=bearer(tokens))
                assert answer.status_code == 401 and code(answer) == "token_revoked"
                assert await refused_at_handshake(server, tokens) == 1008
            signed_in = await http.post(f"{server.base_url}/api/auth/login", json=login)
            assert signed_in.status_code == 403 and code(signed_in) == "account_disabled"
            assert set(signed_in.json()["error"]) == {"code", "message", "details"}
        refreshed = await http.post(
            f"{b.base_url}/api/auth/refresh", json={"refresh_token": second.json()["refresh_token"]}
        )
        assert refreshed.status_code == 401 and code(refreshed) == "invalid_refresh_token"
        wrong = await http.post(
            f"{a.base_url}/api/auth/login", json={**login, "password": "not the password"}
        )
        assert wrong.status_code == 401 and code(wrong) == "invalid_credentials"
        assert me(b, other).status_code == 200
        await other_socket.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(other_socket.recv(), 10))["type"] in {
            "pong",
            "heartbeat",
        }
        await other_socket.close()

        enabled = await asyncio.to_thread(
            users_command, deployment_env, tmp_path, "enable", login["email"]
        )
        assert enabled.returncode == 0, enabled.stderr
        for server in (a, b):
            again = await http.post(f"{server.base_url}/api/auth/login", json=login)
            assert again.status_code == 200
            assert (
                await http.get(f"{server.base_url}/api/auth/me", headers=bearer(again.json()))
            ).status_code == 200
        stale = await http.get(f"{a.base_url}/api/auth/me", headers=bearer(pair))
        assert stale.status_code == 401 and code(stale) == "token_revoked"


def test_disabling_an_unknown_account_says_so(
    deployment_env: dict[str, str], tmp_path: Path
) -> None:
    answer = users_command(deployment_env, tmp_path, "disable", "nobody@example.com")
    assert answer.returncode == 1 and "No account" in answer.stderr


def test_a_stopped_redis_is_a_503_where_it_is_needed_and_recovery_is_automatic(
    two_processes: tuple[ServerProcess, ServerProcess], fault_redis: RedisServer
) -> None:
    a, _ = two_processes
    pair = register(a)
    login = {"email": pair["user"]["email"], "password": PASSWORD}
    fault_redis.halt()
    try:
        for answer in (
            httpx.post(f"{a.base_url}/api/auth/login", json=login, timeout=10),
            httpx.post(f"{a.base_url}/api/auth/ws-ticket", headers=bearer(pair), timeout=10),
        ):
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["code"] == "dependency_unavailable"
            assert answer.json()["error"]["details"] == {"dependency": "redis"}
            assert int(answer.headers["Retry-After"]) > 0
        assert me(a, pair).status_code == 200  # verifying a token never needs Redis
        ready = httpx.get(f"{a.base_url}/health/ready", timeout=10)
        assert ready.status_code == 503 and ready.json()["error"]["details"]["failed"] == ["redis"]
    finally:
        fault_redis.resume()
    a.wait_until_ready(RECOVERY_TIMEOUT_S)
    assert httpx.post(f"{a.base_url}/api/auth/login", json=login, timeout=10).status_code == 200
