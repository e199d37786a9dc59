"""Real `apex serve` processes over a PostgreSQL and a Redis (`--save ''`) of their own, so a test
may stop, restart or overload them without touching other tests' services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.fault_cluster import Cluster
from tests.support.services import PostgresServer, RedisServer, create_pg_database


@pytest.fixture(scope="module")
def fault_redis() -> Iterator[RedisServer]:
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    fault_postgres: PostgresServer,
    fault_redis: RedisServer,
) -> AsyncIterator[Cluster]:
    """One per module: its processes outlive a test (starting one costs seconds), so each test
    leaves them running and healthy."""
    root = tmp_path_factory.mktemp("cluster")
    started = Cluster(root, await create_pg_database(fault_postgres), fault_redis.url)
    yield started
    await started.stop_all()
