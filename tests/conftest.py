"""Suite-wide fixtures: real PostgreSQL and Redis for the session, settings, databases, apps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI

from apex.api.app import create_app
from apex.config import Settings
from apex.store.database import Database
from tests.support.accounts import TEST_JWT_SECRET
from tests.support.asgi import client_for
from tests.support.ledgers import close_usage_ledger, open_usage_ledger
from tests.support.llm_stubs import AnthropicStub, LlmStub, OpenAIStub
from tests.support.oidc_provider import OidcTestProvider
from tests.support.services import PostgresServer, RedisServer, create_pg_database

if TYPE_CHECKING:
    from tests.support.chdb_clickhouse import ChdbClickHouse


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
            # Tests register many accounts from one address: only rate-limit tests set real limits.
            "rate_limit_login_per_minute": 100_000,
            "rate_limit_register_per_minute": 100_000,
            "rate_limit_refresh_per_minute": 100_000,
            # Real argon2id at a cost a test suite can afford; benchmarks report the default cost.
            "argon2_time_cost": 1,
            "argon2_memory_kib": 8_192,
            "argon2_parallelism": 1,
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
    async with client_for(app) as http:
        yield http


_CATEGORY_BY_DIR = {"unit", "integration", "e2e", "mission_critical", "faults"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test is marked by the folder it lives in, so `-m unit` etc. select exactly that."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for category in _CATEGORY_BY_DIR.intersection(parts):
            item.add_marker(getattr(pytest.mark, category))


@pytest.fixture(scope="session")
def llm_stub_servers() -> Iterator[dict[str, LlmStub]]:
    """Local OpenAI and Anthropic API stubs, started once; each test gets them reset."""
    servers: dict[str, LlmStub] = {
        "openai": OpenAIStub().start(),
        "anthropic": AnthropicStub().start(),
    }
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def openai_stub(llm_stub_servers: dict[str, LlmStub]) -> LlmStub:
    llm_stub_servers["openai"].reset()
    return llm_stub_servers["openai"]


@pytest.fixture
def anthropic_stub(llm_stub_servers: dict[str, LlmStub]) -> LlmStub:
    llm_stub_servers["anthropic"].reset()
    return llm_stub_servers["anthropic"]


@pytest.fixture(scope="session")
def oidc_server() -> Iterator[OidcTestProvider]:
    """One real OIDC provider on loopback for the whole session; `oidc_provider` resets it."""
    provider = OidcTestProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def oidc_provider(oidc_server: OidcTestProvider) -> OidcTestProvider:
    oidc_server.reset()
    return oidc_server


@pytest.fixture(params=["embedded", "scaled"])
async def deployment(request: pytest.FixtureRequest, make_settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings for both deployment shapes: embedded (SQLite, in-process bus and auth backends)
    and scaled (PostgreSQL, Redis Streams and Redis auth backends).

    Returns a builder taking further overrides. Each scaled deployment gets its own Redis key
    prefix, so counters and denylists never leak between tests.
    """
    if request.param == "embedded":
        base: dict[str, object] = {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'apex.db'}"}
    else:
        base = {
            "database_url": await create_pg_database(request.getfixturevalue("postgres_server")),
            "redis_url": request.getfixturevalue("redis_server").url,
            "redis_key_prefix": f"t{uuid.uuid4().hex[:16]}",
        }

    def build(**overrides: object) -> Settings:
        return make_settings(**{**base, **overrides})  # type: ignore[no-any-return]

    build.shape = request.param  # type: ignore[attr-defined]
    return build


@pytest.fixture(scope="session")
def chdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbClickHouse]:
    """The embedded ClickHouse of the test session (chDB allows one per process)."""
    from tests.support.chdb_clickhouse import ChdbClickHouse

    server = ChdbClickHouse(tmp_path_factory.mktemp("chdb"))
    yield server
    server.shutdown()


@pytest.fixture(params=["duckdb", "clickhouse"])
def usage_ledger(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Each ledger test runs on both engines."""
    ledger = open_usage_ledger(request.param, tmp_path, request)
    yield ledger
    close_usage_ledger(ledger)


@pytest.fixture
def usage_ledgers(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A DuckDB and a ClickHouse ledger side by side, for identical-answer checks."""
    ledgers = [open_usage_ledger(engine, tmp_path, request) for engine in ("duckdb", "clickhouse")]
    yield ledgers
    for ledger in ledgers:
        close_usage_ledger(ledger)


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
