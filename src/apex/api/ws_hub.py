"""The open WebSocket connections of this process: heartbeats and shutdown, in one place.

One ticker serves every connection (instead of a timer per connection), which keeps an idle
connection cheap: it sends a `heartbeat` frame to each connection that has been silent for
`ws_heartbeat_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from prometheus_client import Gauge

from apex.auth.principal import Principal

WS_CONNECTIONS = Gauge("apex_ws_connections", "Open WebSocket connections")
GOING_AWAY = 1001


class HubMember(Protocol):
    last_sent: float
    user_id: str
    principal: Principal

    def send_frame(self, frame: str) -> None: ...

    def send_heartbeat(self) -> None: ...

    async def shut(self, code: int, reason: str) -> None: ...


class ConnectionHub:
    def __init__(self, heartbeat_s: float) -> None:
        self.heartbeat_s = heartbeat_s
        self._members: set[HubMember] = set()
        self._ticker: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._members)

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick(), name="apex-ws-heartbeats")

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        await asyncio.gather(
            *(member.shut(GOING_AWAY, "server shutting down") for member in list(self._members)),
            return_exceptions=True,
        )

    def add(self, member: HubMember) -> None:
        self._members.add(member)
        WS_CONNECTIONS.inc()

    def discard(self, member: HubMember) -> None:
        if member in self._members:
            self._members.remove(member)
            WS_CONNECTIONS.dec()

    def members(self) -> list[HubMember]:
        return list(self._members)

    def send_to(self, user_id: str, frame: str) -> None:
        """A frame for every connection of one user on this process (notices such as alerts)."""
        for member in list(self._members):
            if member.user_id == user_id:
                member.send_frame(frame)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        interval = min(1.0, self.heartbeat_s / 4)
        while True:
            await asyncio.sleep(interval)
            silent_since = loop.time() - self.heartbeat_s
            for member in list(self._members):
                if member.last_sent <= silent_since:
                    member.send_heartbeat()
