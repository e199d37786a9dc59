"""Fixtures for tests that run against both deployment shapes (the `deployment` fixture).

A test module imports `served`, `app` and `client` from here, and may define `app_overrides`
(a fixture returning extra settings) to configure the app it gets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.support.asgi import running_app


@pytest.fixture
def app_overrides() -> dict[str, object]:
    return {}


@pytest.fixture
async def served(
    deployment, app_overrides: dict[str, object]
) -> AsyncIterator[  # type: ignore[no-untyped-def]
    tuple[FastAPI, httpx.AsyncClient]
]:
    async with running_app(deployment(**app_overrides)) as pair:
        yield pair


@pytest.fixture
def app(served: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return served[0]


@pytest.fixture
def client(served: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return served[1]
