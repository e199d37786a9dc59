"""The ledger's commit lock across servers: a lease in Redis, renewed while it is held.

Every write that changes which rows a tenant has or what they cost holds the ledger's commit
lock (`SqlLedger.commit_lock`). Within one process a reentrant thread lock is enough, and the
embedded DuckDB file has one writing process. Servers sharing one ClickHouse ledger must also
exclude each other: two committing the same file at once would each find its rows new and
count them twice, and an upload read at a price another server is replacing could land just
after that server re-priced the tenant's rows, keeping the replaced price for good.

So with Redis configured, taking the lock also takes a lease in Redis that the holder renews
every third of its length; a server that dies holding it loses it when it runs out.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING

from apex.config.logging import get_logger
from apex.errors import ServiceUnavailable
from apex.shared_redis.errors import LockError, RedisError, redis_required

if TYPE_CHECKING:
    import redis

log = get_logger("apex.analytics.commit_lock")

LEASE_S = 30.0
# longer than the slowest write the ledger makes (committing or re-pricing millions of rows)
WAIT_S = 900.0


class SharedCommitLock:
    """Reentrant within a process, exclusive across every process sharing the Redis name."""

    def __init__(
        self, client: redis.Redis, *, name: str, lease_s: float = LEASE_S, wait_s: float = WAIT_S
    ) -> None:
        self._client = client
        self._local = threading.RLock()
        self._depth = 0
        self._lease_s = lease_s
        self._lease = client.lock(
            name, timeout=lease_s, sleep=0.05, blocking_timeout=wait_s, thread_local=False
        )
        self._released = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> None:
        self._local.acquire()
        if self._depth == 0:
            try:
                self._take()
            except BaseException:
                self._local.release()
                raise
        self._depth += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                self._give_back()
        finally:
            self._local.release()

    def _take(self) -> None:
        with redis_required("Writing to the usage ledger"):
            taken = self._lease.acquire()
        if not taken:
            raise ServiceUnavailable(
                "Another server has been writing to the usage ledger for a long time; try "
                "again shortly.",
                code="ledger_busy",
            )
        self._released = threading.Event()
        self._renewer = threading.Thread(
            target=self._renew, args=(self._released,), name="ledger-commit-lease", daemon=True
        )
        self._renewer.start()

    def _renew(self, released: threading.Event) -> None:
        while not released.wait(self._lease_s / 3):
            try:
                self._lease.extend(self._lease_s, replace_ttl=True)
            except (LockError, RedisError) as exc:
                # Redis lost or expired the lease: another server may now write alongside
                log.error("ledger_commit_lease_not_renewed", error=str(exc))

    def _give_back(self) -> None:
        self._released.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self._lease.release()
        except (LockError, RedisError) as exc:
            # it lapses on its own within LEASE_S; the write itself has landed
            log.error("ledger_commit_lease_not_released", error=str(exc))

    def close(self) -> None:
        self._client.close()
