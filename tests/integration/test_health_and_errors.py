"""Health, readiness per dependency, metrics, request ids and the error shape."""

import sqlite3
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from redis import exceptions as redis_exc
from sqlalchemy import exc as sa_exc

from tests.support.asgi import running_app
from tests.support.services import RedisServer, free_port


async def test_live_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}


async def test_unknown_route_has_the_protocol_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/does-not-exist")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "not_found"
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["details"] == {}


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    generated = await client.get("/health/live")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    hostile = await client.get("/health/live", headers={"X-Request-ID": "bad id;" * 20})
    assert hostile.headers["x-request-id"] != "bad id;" * 20


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/health/live")
    text = (await client.get("/metrics")).text
    assert 'apex_http_requests_total{method="GET",route="/health/live",status="200"}' in text
    assert "apex_http_request_duration_seconds_bucket" in text


async def _ready(settings) -> httpx.Response:  # type: ignore[no-untyped-def]
    async with running_app(settings) as (_, http):
        return await http.get("/health/ready")


async def test_ready_checks_redis_when_configured(make_settings, redis_server: RedisServer) -> None:  # type: ignore[no-untyped-def]
    response = await _ready(make_settings(redis_url=redis_server.url))
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.parametrize("dependency", ["redis", "clickhouse"])
async def test_ready_names_the_failed_dependency(make_settings, dependency: str) -> None:  # type: ignore[no-untyped-def]
    dead = free_port()
    url = f"redis://127.0.0.1:{dead}/0" if dependency == "redis" else f"http://127.0.0.1:{dead}"
    response = await _ready(make_settings(**{f"{dependency}_url": url}))
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"][dependency].startswith("failed")
    assert body["error"]["details"]["failed"] == [dependency]
    assert dependency in body["error"]["message"]


async def test_database_url_on_postgres_is_ready(
    make_settings, postgres_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from tests.support.services import create_pg_database

    url = await create_pg_database(postgres_server)
    response = await _ready(make_settings(database_url=url))
    assert response.json()["checks"] == {"database": "ok"}


def _wrapped_by_the_driver_adapter(cause: Exception) -> sa_exc.DBAPIError:
    """As SQLAlchemy's asyncpg dialect raises it: its adapter's error, caused by asyncpg's."""
    adapted = Exception(str(cause))
    adapted.__cause__ = cause
    return sa_exc.DBAPIError("SELECT 1", {}, adapted)


def _raising(error: Exception):  # type: ignore[no-untyped-def]
    async def endpoint() -> None:
        raise error

    return endpoint


@pytest.mark.parametrize(
    ("error", "dependency"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "database"),
        (asyncpg.CannotConnectNowError("the database system is starting up"), "database"),
        (
            _wrapped_by_the_driver_adapter(asyncpg.CannotConnectNowError("shutting down")),
            "database",
        ),
        (_wrapped_by_the_driver_adapter(asyncpg.UndefinedTableError("no such table")), None),
        (
            sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")),
            "database",
        ),
        (sa_exc.InterfaceError("SELECT", {}, Exception("connection is closed")), "database"),
        (sa_exc.TimeoutError("QueuePool limit reached"), "database"),
        (redis_exc.ConnectionError("Error 111 connecting"), "redis"),
        (sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("FOREIGN KEY")), None),
        (FileNotFoundError(2, "No such file"), None),
    ],
)
async def test_an_outage_is_a_503_with_retry_after_and_anything_else_a_500(
    app: FastAPI, client: httpx.AsyncClient, error: Exception, dependency: str | None
) -> None:
    app.router.routes.insert(0, APIRoute("/api/probe-error", _raising(error)))
    answer = await client.get("/api/probe-error")
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["message"]
    if dependency is None:
        assert answer.status_code == 500 and body["error"]["code"] == "internal_error"
        assert "retry-after" not in answer.headers
    else:
        assert answer.status_code == 503 and body["error"]["code"] == "dependency_unavailable"
        assert body["error"]["details"] == {"dependency": dependency}
        assert int(answer.headers["Retry-After"]) > 0
