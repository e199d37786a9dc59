"""Several real `apex serve` processes made one deployment: one PostgreSQL database, one Redis,
one signing key. Test modules import the `cluster` fixture from here."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from apex.api.app import create_app
from apex.store.database import Database
from apex.store.models import Run
from tests.support.accounts import TEST_JWT_SECRET, make_user
from tests.support.server import ServerProcess
from tests.support.services import PostgresServer, RedisServer, create_pg_database


def shared_env(postgres_server: PostgresServer, redis_server: RedisServer) -> dict[str, str]:
    """What makes several processes one deployment: one database, one Redis, one signing key."""
    return {
        "APEX_DATABASE_URL": asyncio.run(create_pg_database(postgres_server)),
        "APEX_REDIS_URL": redis_server.url,
        "APEX_REDIS_KEY_PREFIX": f"e2e{uuid.uuid4().hex[:12]}",
        "APEX_JWT_SECRET": TEST_JWT_SECRET,
    }


class Endpoint:
    """Just enough of a LiveServer for WsClient: the process's WebSocket URL."""

    def __init__(self, server: ServerProcess) -> None:
        self.ws_url = server.ws_url


@pytest.fixture
async def cluster(
    tmp_path: Path, postgres_server, redis_server, make_settings
) -> AsyncIterator[Callable[..., Any]]:  # type: ignore[no-untyped-def]
    url = await create_pg_database(postgres_server)
    prefix = f"e2e{uuid.uuid4().hex[:12]}"  # keys of its own in the session's Redis
    started: list[ServerProcess] = []

    async def start(name: str, **env: str) -> ServerProcess:
        server = ServerProcess(
            data_dir=tmp_path / name,
            env={
                "APEX_DATABASE_URL": url,
                "APEX_REDIS_URL": redis_server.url,
                "APEX_REDIS_KEY_PREFIX": prefix,
                "APEX_JWT_SECRET": TEST_JWT_SECRET,
                **env,
            },
        )
        await asyncio.to_thread(server.start)
        started.append(server)
        return server

    async def user() -> tuple[str, str]:
        """An account in the shared database, with a token both processes accept."""
        app = create_app(
            make_settings(database_url=url, redis_url=redis_server.url, redis_key_prefix=prefix)
        )
        async with app.router.lifespan_context(app):
            user_id, headers = await make_user(app)
        return user_id, headers["Authorization"].removeprefix("Bearer ")

    async def worker_pid(run_id: str) -> int:
        """The process id recorded in the run's worker id (host:pid:nonce)."""
        db = Database(url)
        try:
            async with db.session() as session:
                run = await session.get(Run, run_id)
        finally:
            await db.dispose()
        assert run is not None and run.worker_id is not None
        return int(run.worker_id.split(":")[1])

    start.user = user  # type: ignore[attr-defined]
    start.worker_pid = worker_pid  # type: ignore[attr-defined]
    yield start
    for server in started:
        await asyncio.to_thread(server.stop)
