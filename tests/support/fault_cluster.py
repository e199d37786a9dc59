"""Real `apex serve` processes sharing one app database and one Redis, for fault tests: a
process outlives a test (starting one costs seconds), may be killed and is started again on
its next use."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx

from apex.api.app import create_app
from apex.config import Settings
from tests.support.accounts import TEST_JWT_SECRET, make_user
from tests.support.run_harness import bearer
from tests.support.server import ServerProcess

# a process is judged lost after 3 s without a heartbeat: a false alarm would show within a test
FAST_RECOVERY = {"APEX_WORKER_HEARTBEAT_S": "1", "APEX_WORKER_LOST_AFTER_S": "3"}


class Cluster:
    """Processes sharing one app database and one Redis; each test gets its own database."""

    def __init__(self, root: Path, database_url: str, redis_url: str) -> None:
        self.root = root
        self.database_url = database_url
        self.redis_url = redis_url
        self.prefix = f"f{uuid.uuid4().hex[:12]}"
        self.processes: dict[str, ServerProcess] = {}

    async def start(self, name: str, **env: str) -> ServerProcess:
        """The process `name`, started on first use (a killed one is started again)."""
        known = self.processes.get(name)
        if known is not None and known.process is not None and known.process.poll() is None:
            return known
        server = ServerProcess(
            data_dir=self.root / name,
            env={
                "APEX_DATABASE_URL": self.database_url,
                "APEX_REDIS_URL": self.redis_url,
                "APEX_REDIS_KEY_PREFIX": self.prefix,
                "APEX_JWT_SECRET": TEST_JWT_SECRET,
                **FAST_RECOVERY,
                **env,
            },
        )
        await asyncio.to_thread(server.start)
        self.processes[name] = server
        return server

    async def users(self, count: int) -> list[tuple[str, str]]:
        """Accounts in the shared database, each with a token every process accepts."""
        settings = Settings(
            _env_file=None,
            env="test",
            data_dir=self.root / "accounts",
            jwt_secret=TEST_JWT_SECRET,
            log_level="WARNING",
            database_url=self.database_url,
        ).prepare()
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            made = [await make_user(app) for _ in range(count)]
        return [
            (user_id, headers["Authorization"].removeprefix("Bearer ")) for user_id, headers in made
        ]

    async def user(self) -> tuple[str, str]:
        return (await self.users(1))[0]

    async def stop_all(self) -> None:
        for server in self.processes.values():
            await asyncio.to_thread(server.stop)


async def get_run(server: ServerProcess, token: str, run_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=bearer(token), timeout=10
    ) as http:
        answer = await http.get(f"/api/runs/{run_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())
