"""The app database stopped under a real `apex serve` process, then started again: every call
that needs it answers 503 `dependency_unavailable` with `Retry-After` (never a 500 or a stack
trace), `/health/ready` names the database, and the process recovers by itself."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from apex.store.database import Database
from tests.support.accounts import TEST_JWT_SECRET
from tests.support.server import ServerProcess
from tests.support.services import PostgresServer, create_pg_database

PASSWORD = "correct horse battery"
RECOVERY_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def served(
    fault_postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {
        "APEX_DATABASE_URL": asyncio.run(create_pg_database(fault_postgres)),
        "APEX_JWT_SECRET": TEST_JWT_SECRET,
    }
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("outage") / "a", env=env).start()
    yield server
    server.stop()


def calls(server: ServerProcess, email: str, token: str, run_id: str) -> dict[str, httpx.Response]:
    """One of each kind of call that needs the app database."""
    base, auth = server.base_url, {"Authorization": f"Bearer {token}"}
    return {
        "login": httpx.post(
            f"{base}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
        ),
        "me": httpx.get(f"{base}/api/auth/me", headers=auth, timeout=10),
        "run": httpx.get(f"{base}/api/runs/{run_id}", headers=auth, timeout=10),
        "threads": httpx.get(f"{base}/api/threads", headers=auth, timeout=10),
        "start run": httpx.post(f"{base}/api/runs", json={"text": "hi"}, headers=auth, timeout=10),
    }


def test_a_stopped_database_is_a_503_with_retry_after_and_recovery_is_automatic(
    fault_postgres: PostgresServer, served: ServerProcess
) -> None:
    email = f"o{uuid.uuid4().hex[:10]}@example.com"
    pair = httpx.post(
        f"{served.base_url}/api/auth/register",
        json={"email": email, "password": PASSWORD},
        timeout=10,
    ).json()
    token = pair["access_token"]
    run_id = httpx.post(
        f"{served.base_url}/api/runs",
        json={"text": "spend?"},
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
    ).json()["run_id"]
    assert {name: r.status_code for name, r in calls(served, email, token, run_id).items()} == {
        "login": 200,
        "me": 200,
        "run": 200,
        "threads": 200,
        "start run": 202,
    }

    fault_postgres.halt()
    try:
        for name, answer in calls(served, email, token, run_id).items():
            assert answer.status_code == 503, (name, answer.text)
            assert answer.json()["error"]["code"] == "dependency_unavailable", name
            assert answer.json()["error"]["details"] == {"dependency": "database"}, name
            assert int(answer.headers["Retry-After"]) > 0, name
        ready = httpx.get(f"{served.base_url}/health/ready", timeout=10)
        assert ready.status_code == 503 and ready.json()["error"]["details"]["failed"] == [
            "database"
        ]
        assert ready.json()["checks"]["database"].startswith("failed")
    finally:
        fault_postgres.resume()

    served.wait_until_ready(RECOVERY_TIMEOUT_S)
    assert {name: r.status_code for name, r in calls(served, email, token, run_id).items()} == {
        "login": 200,
        "me": 200,
        "run": 200,
        "threads": 200,
        "start run": 202,
    }
    assert "Traceback" not in Path(served.log_path).read_text()


async def test_pooled_connections_a_restart_closed_are_replaced_before_use(
    fault_postgres: PostgresServer,
) -> None:
    database = Database(await create_pg_database(fault_postgres))
    try:
        await database.upgrade()

        async def one_session() -> int:
            async with database.session() as session:
                value = await session.scalar(text("SELECT 1"))
                await asyncio.sleep(0.05)  # the sessions overlap: the pool keeps several
                return int(value)

        assert await asyncio.gather(*(one_session() for _ in range(5))) == [1] * 5
        assert database.engine.pool.checkedin() == 5
        fault_postgres.halt()
        fault_postgres.resume()
        await asyncio.sleep(0.2)  # the driver reads each connection's close
        assert await asyncio.gather(*(one_session() for _ in range(5))) == [1] * 5
    finally:
        await database.dispose()
