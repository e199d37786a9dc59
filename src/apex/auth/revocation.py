"""Revoked access-token ids, sign-ins and accounts: checked in memory on every request, recorded
in the app database, carried between processes by Redis.

Verification must never wait on the network, so every process keeps the denylist in memory (a
dictionary lookup per request). The app database is the record: a revocation is written there
before it counts as done, and a process loads the live entries when it starts, so neither a
restart of the process nor a Redis restart without persistence forgets one. With Redis, each
revocation is also published so every other process learns it at once; pub/sub delivers at most
once (nothing while a connection is down), so every process also reads what was recorded since
its last look every few seconds and each time its subscription is re-established.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from apex.config.logging import get_logger
from apex.errors import DependencyUnavailable
from apex.shared_redis.errors import RedisError
from apex.store.database import is_unreachable
from apex.store.repositories.revocations import RevocationRepository

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = get_logger("apex.auth.revocation")

PRUNE_EVERY_S = 60.0
RESYNC_EVERY_S = 5.0
RETRY_AFTER_S = 1.0
STARTUP_WAIT_S = 3.0
# a revocation committed just before a look may carry an earlier time than one already seen
RESYNC_OVERLAP = timedelta(seconds=30)

RevocationListener = Callable[[], None]


class RevocationList(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def revoke(self, ids: Sequence[str], until: float) -> None:
        """Deny `ids` (token, session or account ids) until the Unix time `until`, everywhere."""

    def is_revoked(self, token_id: str) -> bool:
        """A memory lookup: safe on the hot path of every request."""

    def on_revoked(self, listener: RevocationListener) -> None:
        """Call `listener` in the event loop whenever ids are newly denied, wherever that was
        decided: holders of long-lived credentials (WebSockets) check theirs then."""


class LocalRevocationList:
    """The in-process denylist, bounded by expiry: entries are dropped once they can no longer matter."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._next_prune = time.time() + PRUNE_EVERY_S
        self._listeners: list[RevocationListener] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def revoke(self, ids: Sequence[str], until: float) -> None:
        self.add(ids, until)

    def on_revoked(self, listener: RevocationListener) -> None:
        self._listeners.append(listener)

    def add(self, ids: Sequence[str], until: float) -> bool:
        """Remember `ids`; True when one of them was not denied before (listeners were told)."""
        now = time.time()
        new = False
        for token_id in ids:
            known = self._until.get(token_id)
            new = new or known is None
            if until > (known or 0.0):
                self._until[token_id] = until
        if now >= self._next_prune:
            self._until = {k: v for k, v in self._until.items() if v > now}
            self._next_prune = now + PRUNE_EVERY_S
        if new:
            for listener in self._listeners:
                listener()
        return new

    def is_revoked(self, token_id: str) -> bool:
        return token_id in self._until

    def __len__(self) -> int:
        return len(self._until)


class RecordedRevocationList:
    """The in-process denylist as a cache of the app database's record."""

    def __init__(
        self, record: RevocationRepository, resync_every_s: float = RESYNC_EVERY_S
    ) -> None:
        self._record = record
        self._resync_every_s = resync_every_s
        self._memory = LocalRevocationList()
        self._seen_up_to: datetime | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Load what is in force; a database that cannot answer yet is retried in the background."""
        try:
            await self.resync()
        except Exception as exc:
            log.warning("revocations_not_loaded_at_start", error=repr(exc)[:200])
        self._tasks.append(asyncio.create_task(self._resync_loop(), name="apex-revocations"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def revoke(self, ids: Sequence[str], until: float) -> None:
        self._memory.add(ids, until)
        try:
            await self._record.record(ids, until)
        except Exception as exc:
            if is_unreachable(exc):
                raise DependencyUnavailable("database", "Revoking a token") from exc
            raise
        await self._announce(ids, until)

    def is_revoked(self, token_id: str) -> bool:
        return self._memory.is_revoked(token_id)

    def on_revoked(self, listener: RevocationListener) -> None:
        self._memory.on_revoked(listener)

    async def resync(self) -> None:
        """Add what was recorded since the last look (by any process)."""
        since = self._seen_up_to - RESYNC_OVERLAP if self._seen_up_to is not None else None
        for entry in await self._record.live_since(since):
            self._memory.add([entry.id], entry.until)
            if self._seen_up_to is None or entry.revoked_at > self._seen_up_to:
                self._seen_up_to = entry.revoked_at

    async def _announce(self, ids: Sequence[str], until: float) -> None:
        """Tell the other processes now (they would otherwise learn it at their next look)."""
        return None

    async def _try_resync(self) -> bool:
        try:
            await self.resync()
        except Exception as exc:
            log.warning("revocations_resync_failed", error=repr(exc)[:200])
            return False
        return True

    async def _resync_loop(self) -> None:
        next_prune = time.monotonic() + PRUNE_EVERY_S
        while True:
            await asyncio.sleep(self._resync_every_s)
            if await self._try_resync() and time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY_S
                try:
                    await self._record.prune()
                except Exception as exc:
                    log.warning("revocations_prune_failed", error=repr(exc)[:200])


class RedisRevocationList(RecordedRevocationList):
    """Recorded in the app database, announced to every process through a Redis channel."""

    def __init__(
        self,
        record: RevocationRepository,
        client: aioredis.Redis,
        prefix: str,
        resync_every_s: float = RESYNC_EVERY_S,
    ) -> None:
        super().__init__(record, resync_every_s)
        self._redis = client
        self._channel = f"{prefix}:auth:revocations"
        self._first_attempt = asyncio.Event()
        self.synced = asyncio.Event()

    async def start(self) -> None:
        """Follow the channel in the background; wait briefly so a healthy start begins in sync."""
        await super().start()
        self._tasks.append(asyncio.create_task(self._follow(), name="apex-revocation-follower"))
        try:
            await asyncio.wait_for(self._first_attempt.wait(), STARTUP_WAIT_S)
        except TimeoutError:
            log.warning("revocations_not_synced_at_start")

    async def _announce(self, ids: Sequence[str], until: float) -> None:
        """Best effort: the revocation is recorded, so a process that misses this message
        learns it at its next look at the record."""
        try:
            await self._redis.publish(self._channel, json.dumps({"ids": list(ids), "until": until}))
        except RedisError as exc:
            log.warning("revocation_not_announced", error=repr(exc)[:200])

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
                    await self._try_resync()  # what was announced while we were not listening
                    self.synced.set()
                    self._first_attempt.set()
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=self._resync_every_s
                        )
                        if message is not None and message["type"] == "message":
                            self._apply(message["data"])
            except (RedisError, OSError) as exc:
                self.synced.clear()
                self._first_attempt.set()
                log.warning("revocation_follower_retrying", error=repr(exc)[:200])
                await asyncio.sleep(RETRY_AFTER_S)
