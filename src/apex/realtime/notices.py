"""Notices: small frames for one user's open WebSockets that are not run events (alerts).

A notice is raised on whichever process noticed something, while its user may be connected to
another. In-process, `publish` hands the frame straight to this process's sockets; with Redis
it is published on the user's own channel (`<prefix>:notices:<user id>`) and every process,
subscribed to the pattern of those channels, hands it to the sockets it holds for that user.
Delivery is best effort and live only: what a notice says is also stored (the alert list), so
a client that was offline reads it there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any, Protocol

from apex.config.logging import get_logger
from apex.shared_redis.client import redis_client
from apex.shared_redis.errors import RedisError

log = get_logger(__name__)

# (user id, frame as JSON text): hands a frame to that user's sockets on this process
Deliver = Callable[[str, str], object]
RECONNECT_DELAY_S = 1.0
SUBSCRIBE_TIMEOUT_S = 10.0


class Notices(Protocol):
    async def start(self, deliver: Deliver) -> None: ...
    async def publish(self, user_id: str, frame: dict[str, Any]) -> None: ...
    async def close(self) -> None: ...


def _wire(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


class InProcessNotices:
    """One process: the frame goes to this process's sockets of the user."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, user_id: str, frame: dict[str, Any]) -> None:
        if self._deliver is not None:
            self._deliver(user_id, _wire(frame))

    async def close(self) -> None:
        self._deliver = None


class RedisNotices:
    """Several processes: a channel per user, one pattern subscription per process."""

    def __init__(self, url: str, *, prefix: str) -> None:
        self._client = redis_client(url)
        self._prefix = f"{prefix}:notices:"
        self._deliver: Deliver | None = None
        self._listener: asyncio.Task[None] | None = None

    def channel(self, user_id: str) -> str:
        return self._prefix + user_id

    async def start(self, deliver: Deliver) -> None:
        """Subscribed on return when Redis answers; else the server starts anyway and the
        subscription is made in the background once Redis is back."""
        self._deliver = deliver
        try:
            pubsub = await self._subscribe()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("notices_not_subscribed", error=repr(exc))
            pubsub = None
        self._listener = asyncio.create_task(self._listen(pubsub), name="apex-notices")

    async def _subscribe(self) -> Any:
        """A confirmed pattern subscription: a notice published after `start` is not missed."""
        pubsub = self._client.pubsub()
        await pubsub.psubscribe(self._prefix + "*")
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "psubscribe":
                    return pubsub

    async def _listen(self, pubsub: Any) -> None:
        if pubsub is None:
            pubsub = await self._resubscribe()
        while True:
            try:
                async for message in pubsub.listen():
                    if message["type"] != "pmessage" or self._deliver is None:
                        continue
                    channel = message["channel"].decode()
                    self._deliver(channel.removeprefix(self._prefix), message["data"].decode())
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except (RedisError, OSError) as exc:
                log.warning("notices_subscription_lost", error=repr(exc))
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(RECONNECT_DELAY_S)
                pubsub = await self._resubscribe()

    async def _resubscribe(self) -> Any:
        while True:
            try:
                return await self._subscribe()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("notices_resubscribe_failed", error=repr(exc))
                await asyncio.sleep(RECONNECT_DELAY_S)

    async def publish(self, user_id: str, frame: dict[str, Any]) -> None:
        try:
            await self._client.publish(self.channel(user_id), _wire(frame))
        except RedisError as exc:  # live delivery only: the stored alert remains
            log.warning("notice_not_published", user_id=user_id, error=repr(exc))

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._client.aclose()


def open_notices(redis_url: str | None, *, prefix: str) -> Notices:
    """Redis when configured (several processes), else in-process."""
    if redis_url:
        return RedisNotices(redis_url, prefix=prefix)
    return InProcessNotices()
