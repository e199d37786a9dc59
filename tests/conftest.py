"""Suite-wide fixtures: real PostgreSQL and Redis for the session, settings, databases, apps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from apex.api.app import create_app
from apex.config import Settings
from apex.store.database import Database
from tests.support.services import PostgresServer, RedisServer

TEST_JWT_SECRET = "test-secret-" + "x" * 40


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer.start()
    yield server
    server.stop()


async def create_pg_database(server: PostgresServer) -> str:
    name = f"t_{uuid.uuid4().hex[:16]}"
    connection = await asyncpg.connect(server.admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return server.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty app database on each backend: every store test runs on both."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'apex.db'}"
    return await create_pg_database(request.getfixturevalue("postgres_server"))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await db.upgrade()
    yield db
    await db.dispose()


@pytest.fixture
def make_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "env": "test",
            "data_dir": tmp_path / "data",
            "jwt_secret": TEST_JWT_SECRET,
            "log_level": "WARNING",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values).prepare()  # type: ignore[arg-type]

    return make


@pytest.fixture
async def app(make_settings, database_url: str) -> AsyncIterator[FastAPI]:  # type: ignore[no-untyped-def]
    application = create_app(make_settings(database_url=database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://apex.test") as http:
        yield http


_CATEGORY_BY_DIR = {"unit", "integration", "e2e", "mission_critical"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test is marked by the folder it lives in, so `-m unit` etc. select exactly that."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for category in _CATEGORY_BY_DIR.intersection(parts):
            item.add_marker(getattr(pytest.mark, category))


async def make_user(app: FastAPI, email: str | None = None) -> tuple[str, dict[str, str]]:
    """A real account in the app's database and a real access token for it."""
    from apex.store.repositories.users import UserRepository

    user = await UserRepository(app.state.db).create(
        email=email or f"{uuid.uuid4().hex[:12]}@example.com", password_hash=None, name=None
    )
    token = app.state.access_tokens.issue(user.id).token
    return user.id, {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    """Playwright driving /usr/bin/chromium (the web app's browser tests)."""
    from tests.support.browser import launched_chromium

    yield from launched_chromium()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real `apex serve` process the browser tests sign up against."""
    from tests.support.browser import served_web_app

    yield from served_web_app(tmp_path_factory.mktemp("web") / "data")
