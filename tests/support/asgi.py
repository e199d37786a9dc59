"""An Apex app running in this process (lifespan included), with an httpx client bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from apex.api.app import create_app
from apex.config import Settings

BASE_URL = "http://apex.test"


def client_for(app: FastAPI, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client whose requests reach the app from `ip` (the ASGI peer address)."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40_000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as client:
        yield app, client
