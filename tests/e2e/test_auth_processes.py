"""Authentication across real server processes that share PostgreSQL and Redis, and OIDC through
a real server: every hop over real sockets."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.cluster import shared_env
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcTestProvider
from tests.support.server import ServerProcess
from tests.support.services import PostgresServer, RedisServer

PASSWORD = "correct horse battery"


def start(tmp: Path, name: str, env: dict[str, str]) -> ServerProcess:
    return ServerProcess(data_dir=tmp / name, env=dict(env)).start()


@pytest.fixture(scope="module")
def deployment_env(postgres_server: PostgresServer, redis_server: RedisServer) -> dict[str, str]:
    return shared_env(postgres_server, redis_server)


@pytest.fixture(scope="module")
def two_processes(
    tmp_path_factory: pytest.TempPathFactory, deployment_env: dict[str, str]
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    tmp = tmp_path_factory.mktemp("auth-pair")
    first = start(tmp, "a", deployment_env)
    try:
        second = start(tmp, "b", deployment_env)
    except Exception:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()
    for server in (first, second):
        assert "Traceback" not in server.log_path.read_text()


def register(server: ServerProcess) -> dict:  # type: ignore[type-arg]
    response = httpx.post(
        f"{server.base_url}/api/auth/register",
        json={"email": f"e{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def me(server: ServerProcess, pair: dict) -> httpx.Response:  # type: ignore[type-arg]
    return httpx.get(
        f"{server.base_url}/api/auth/me",
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )


def refresh(server: ServerProcess, token: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/api/auth/refresh", json={"refresh_token": token})


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def test_logout_on_one_process_is_refused_at_once_on_the_other(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_processes
    for _ in range(5):
        pair = register(a)
        assert me(b, pair).status_code == 200
        logout = httpx.post(
            f"{a.base_url}/api/auth/logout",
            headers={"Authorization": f"Bearer {pair['access_token']}"},
        )
        assert logout.status_code == 204
        refused = me(b, pair)  # no retry, no wait: the very next request
        assert refused.status_code == 401 and code(refused) == "token_revoked"
        dead = refresh(b, pair["refresh_token"])
        assert dead.status_code == 401 and code(dead) == "invalid_refresh_token"


def test_a_process_started_later_knows_earlier_revocations(
    two_processes: tuple[ServerProcess, ServerProcess],
    deployment_env: dict[str, str],
    tmp_path: Path,
) -> None:
    a, _ = two_processes
    revoked, kept = register(a), register(a)
    httpx.post(
        f"{a.base_url}/api/auth/logout",
        headers={"Authorization": f"Bearer {revoked['access_token']}"},
    )
    late = start(tmp_path, "late", deployment_env)
    try:
        assert code(me(late, revoked)) == "token_revoked"
        assert me(late, kept).status_code == 200
    finally:
        late.stop()


def test_refresh_token_reuse_is_caught_across_processes(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_processes
    original = register(a)
    rotated = refresh(a, original["refresh_token"])
    assert rotated.status_code == 200
    replay = refresh(b, original["refresh_token"])
    assert replay.status_code == 401 and code(replay) == "refresh_token_reused"
    assert code(refresh(a, rotated.json()["refresh_token"])) == "invalid_refresh_token"
    for server in (a, b):
        assert code(me(server, rotated.json())) == "token_revoked"


def test_racing_refreshes_on_two_processes_have_one_winner(
    two_processes: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_processes
    token = register(a)["refresh_token"]

    async def race() -> list[int]:
        async with httpx.AsyncClient() as http:
            responses = await asyncio.gather(
                *(
                    http.post(f"{server.base_url}/api/auth/refresh", json={"refresh_token": token})
                    for server in (a, b, a, b)
                )
            )
        return sorted(r.status_code for r in responses)

    assert asyncio.run(race()) == [200, 401, 401, 401]


def test_rate_limits_hold_across_processes_and_ignore_forwarded_for(
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    env = {**shared_env(postgres_server, redis_server), "APEX_RATE_LIMIT_LOGIN_PER_MINUTE": "4"}
    a = start(tmp_path, "a", env)
    try:
        b = start(tmp_path, "b", env)
        try:
            statuses = []
            for i, server in enumerate((a, b, a, b, a)):
                response = httpx.post(
                    f"{server.base_url}/api/auth/login",
                    headers={"X-Forwarded-For": f"203.0.113.{i}"},
                    json={"email": f"nobody{i}@example.com", "password": PASSWORD},
                )
                statuses.append(response.status_code)
            assert statuses == [401, 401, 401, 401, 429]
            limited = httpx.post(
                f"{b.base_url}/api/auth/login",
                json={"email": "x@example.com", "password": PASSWORD},
            )
            assert limited.status_code == 429
            assert 1 <= int(limited.headers["retry-after"]) <= 60
            assert code(limited) == "rate_limited"
        finally:
            b.stop()
    finally:
        a.stop()


def test_oidc_sign_in_through_a_real_server(
    oidc_provider: OidcTestProvider, tmp_path: Path
) -> None:
    server = ServerProcess(
        data_dir=tmp_path / "oidc",
        env={
            "APEX_OIDC_ISSUER": oidc_provider.issuer,
            "APEX_OIDC_CLIENT_ID": CLIENT_ID,
            "APEX_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "APEX_OIDC_NAME": "corp",
        },
    )
    server.env["APEX_PUBLIC_URL"] = server.base_url
    server.start()
    try:
        with httpx.Client() as browser:
            to_provider = browser.get(f"{server.base_url}/api/auth/oidc/corp/login")
            assert to_provider.status_code == 302
            back = browser.get(to_provider.headers["location"])
            assert back.status_code == 302
            assert back.headers["location"].startswith(f"{server.base_url}/api/auth/oidc/corp/")
            done = browser.get(back.headers["location"])
            assert done.status_code == 303
            location = done.headers["location"]
            assert location.startswith(f"{server.base_url}/#/oidc?")
            tokens = {
                k: v[0]
                for k, v in parse_qs(urlsplit(location).fragment.removeprefix("/oidc?")).items()
            }
            profile = browser.get(
                f"{server.base_url}/api/auth/me",
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            )
            assert profile.status_code == 200
            assert profile.json()["email"] == oidc_provider.person.email
            replay = browser.get(back.headers["location"])
            assert replay.status_code == 400 and code(replay) == "invalid_oidc_state"
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text()


def test_forwarded_for_counts_only_behind_a_trusted_proxy(tmp_path: Path) -> None:
    server = start(
        tmp_path,
        "proxied",
        {"APEX_RATE_LIMIT_LOGIN_PER_MINUTE": "2", "APEX_FORWARDED_ALLOW_IPS": "127.0.0.1"},
    )
    try:

        def login(forwarded_for: str) -> int:
            return httpx.post(
                f"{server.base_url}/api/auth/login",
                headers={"X-Forwarded-For": forwarded_for},
                json={"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD},
            ).status_code

        assert [login(f"198.51.100.{i}") for i in range(4)] == [401] * 4
        assert [login("198.51.100.77") for _ in range(3)] == [401, 401, 429]
    finally:
        server.stop()
