"""A real server on a loopback port inside the test's event loop, and protocol-speaking clients.

`live_server` runs the real app (lifespan, routers, /ws) under uvicorn on a free port, so tests
use real sockets and real WebSocket/HTTP clients while injecting a scripted workflow.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed

from apex.api.app import create_app
from apex.cli import server_options
from apex.config import Settings
from apex.execution.state import TERMINAL_STATES
from apex.execution.workflow import Workflow
from tests.support.accounts import make_user
from tests.support.services import free_port

FINAL = "final"


@dataclass
class LiveServer:
    app: FastAPI
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@asynccontextmanager
async def live_server(
    settings: Settings,
    workflow: Workflow | None = None,
) -> AsyncIterator[LiveServer]:
    app = create_app(settings, workflow=workflow)
    async with app.router.lifespan_context(app):
        port = free_port()
        options = {**server_options(settings), "host": "127.0.0.1", "port": port}
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", **options))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            yield LiveServer(app, port)
        finally:
            server.should_exit = True
            await task


async def new_user(server: LiveServer) -> tuple[str, str]:
    """A real account and a real access token for it (through the suite's `make_user`)."""
    user_id, headers = await make_user(server.app)
    return user_id, headers["Authorization"].removeprefix("Bearer ")


@dataclass
class WsClient:
    connection: websockets.ClientConnection
    frames: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def connect(cls, server: LiveServer, token: str, **options: Any) -> WsClient:
        connection = await websockets.connect(
            server.ws_url,
            subprotocols=["apex.v1", f"bearer.{token}"],  # type: ignore[list-item]
            ping_interval=None,
            max_size=None,
            open_timeout=10,
            **options,
        )
        client = cls(connection)
        ready = await client.recv()
        assert ready["type"] == "connection_ready", ready
        return client

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.connection.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.connection.recv(), timeout))
        self.frames.append(frame)
        return frame

    async def reply(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame that is not a heartbeat: a server that beats every few hundred
        milliseconds of silence may slip one in before any answer."""
        return (await self.recv_until(lambda f: True, timeout))[-1]

    async def recv_until(
        self, done: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """Frames up to and including the first for which `done` is true (heartbeats skipped)."""
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame["type"] == "heartbeat":
                    continue
                seen.append(frame)
                if done(frame):
                    return seen

    async def start_run(self, text: str, **extra: Any) -> dict[str, Any]:
        """Send a user_message and return its message_accepted frame."""
        ref = uuid.uuid4().hex
        await self.send({"type": "user_message", "text": text, "client_message_id": ref, **extra})
        frames = await self.recv_until(
            lambda f: f.get("client_message_id") == ref or f.get("ref") == ref
        )
        accepted = frames[-1]
        assert accepted["type"] == "message_accepted", accepted
        return accepted

    async def events_until_final(self, run_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Every event of `run_id` received from now until its final one."""
        frames = await self.recv_until(
            lambda f: f.get("run_id") == run_id and f.get("payload", {}).get(FINAL) is True, timeout
        )
        return [f for f in frames if f.get("run_id") == run_id and "seq" in f]

    async def run_events(self, run_id: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Every event of `run_id` this connection has received, reading on until its final."""

        def events() -> list[dict[str, Any]]:
            return [f for f in self.frames if f.get("run_id") == run_id and "seq" in f]

        if not any(e["payload"].get(FINAL) is True for e in events()):
            await self.events_until_final(run_id, timeout)
        return events()

    async def close(self) -> None:
        await self.connection.close()


async def wait_until_ended(
    client: httpx.AsyncClient, headers: dict[str, str], run_id: str, timeout: float = 20
) -> dict[str, Any]:
    """Poll `GET /api/runs/{id}` until the run reaches a terminal state; return it."""
    ended = {state.value for state in TERMINAL_STATES}
    async with asyncio.timeout(timeout):
        while True:
            run: dict[str, Any] = (await client.get(f"/api/runs/{run_id}", headers=headers)).json()
            if run["state"] in ended:
                return run
            await asyncio.sleep(0.02)


def parse_sse(text: str) -> list[tuple[int, dict[str, Any]]]:
    """(id, event) of each frame of a Server-Sent Events body; comment lines are skipped."""
    frames = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines:
            frames.append((int(lines["id"]), json.loads(lines["data"])))
    return frames


def signed_in(pair: dict[str, Any]) -> dict[str, str]:
    """The Authorization header of a sign-in answer's access token."""
    return bearer(pair["access_token"])


async def closed_with(ws: WsClient, timeout: float = 5.0) -> tuple[int, str]:
    """The close code and reason the server ended the socket with (reading until it does)."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(timeout):
            while True:
                await ws.connection.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def http(server: LiveServer, token: str | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url, headers=bearer(token) if token else None, timeout=30
    )
