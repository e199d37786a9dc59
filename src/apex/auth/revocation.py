"""Revoked access-token ids and sessions: checked in memory on every request, shared through Redis.

Verification must never wait on the network, so every process keeps the denylist in memory.
With Redis configured, a revocation is also added to a sorted set (score: when it may be
forgotten) and published; every process follows the channel, and loads the set when it starts,
when it reconnects, and every few seconds (pub/sub delivers at most once, so a message sent while
a connection was down would otherwise be lost).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from apex.config.logging import get_logger
from apex.store.redis_errors import redis_required

log = get_logger("apex.auth.revocation")

PRUNE_EVERY_S = 60.0
RESYNC_EVERY_S = 10.0
RETRY_AFTER_S = 1.0
STARTUP_WAIT_S = 3.0


class RevocationList(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def revoke(self, ids: Sequence[str], until: float) -> None:
        """Deny `ids` (token ids or session ids) until the Unix time `until`, on every process."""

    def is_revoked(self, token_id: str) -> bool:
        """A memory lookup: safe on the hot path of every request."""


class LocalRevocationList:
    """The in-process denylist, bounded by expiry: entries are dropped once they can no longer matter."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._next_prune = time.time() + PRUNE_EVERY_S

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def revoke(self, ids: Sequence[str], until: float) -> None:
        self.add(ids, until)

    def add(self, ids: Sequence[str], until: float) -> None:
        now = time.time()
        for token_id in ids:
            if until > self._until.get(token_id, 0.0):
                self._until[token_id] = until
        if now >= self._next_prune:
            self._until = {k: v for k, v in self._until.items() if v > now}
            self._next_prune = now + PRUNE_EVERY_S

    def is_revoked(self, token_id: str) -> bool:
        return token_id in self._until

    def __len__(self) -> int:
        return len(self._until)


class RedisRevocationList:
    """The in-process denylist, kept in step with every other process through Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str,
                 resync_every_s: float = RESYNC_EVERY_S) -> None:
        self._redis = client
        self._resync_every_s = resync_every_s
        self._key = f"{prefix}:auth:revoked"
        self._channel = f"{prefix}:auth:revocations"
        self._memory = LocalRevocationList()
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self.synced = asyncio.Event()

    async def start(self) -> None:
        """Follow the channel in the background; wait briefly so a healthy start begins in sync."""
        self._task = asyncio.create_task(self._follow(), name="apex-revocation-follower")
        try:
            await asyncio.wait_for(self._first_attempt.wait(), STARTUP_WAIT_S)
        except TimeoutError:
            log.warning("revocations_not_synced_at_start")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def revoke(self, ids: Sequence[str], until: float) -> None:
        self._memory.add(ids, until)
        message = json.dumps({"ids": list(ids), "until": until})
        with redis_required("Revoking a token"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zadd(self._key, dict.fromkeys(ids, until), gt=True)
                pipe.zremrangebyscore(self._key, "-inf", time.time())
                pipe.publish(self._channel, message)
                await pipe.execute()

    def is_revoked(self, token_id: str) -> bool:
        return self._memory.is_revoked(token_id)

    async def _load(self) -> None:
        entries = await self._redis.zrangebyscore(self._key, time.time(), "+inf", withscores=True)
        for member, score in entries:
            self._memory.add([member.decode() if isinstance(member, bytes) else member], score)

    def _apply(self, data: bytes | str) -> None:
        try:
            message = json.loads(data)
            ids, until = message["ids"], float(message["until"])
        except (ValueError, TypeError, KeyError):
            ids, until = None, 0.0
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            log.warning("revocation_message_ignored", size=len(data))
            return
        self._memory.add(ids, until)

    async def _follow(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    await self._load()
                    self.synced.set()
                    self._first_attempt.set()
                    next_resync = time.monotonic() + self._resync_every_s
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=self._resync_every_s
                        )
                        if message is not None and message["type"] == "message":
                            self._apply(message["data"])
                        if time.monotonic() >= next_resync:
                            await self._load()
                            next_resync = time.monotonic() + self._resync_every_s
            except (RedisError, OSError) as exc:
                self.synced.clear()
                self._first_attempt.set()
                log.warning("revocation_follower_retrying", error=repr(exc)[:200])
                await asyncio.sleep(RETRY_AFTER_S)
