"""Admission of runs: a per-user limit and a process-wide limit on runs executing at once.

A run that finds no free slot waits (its state stays `pending`), first for one of its user's
slots and then for a global one, in arrival order. Idle users hold no memory. When processes
share a bus, the per-user limit is also claimed there, so it holds across processes: a run
waits until fewer than `per_user` of its user's runs execute anywhere. If the bus does not
answer, the process's own limit is the one applied (a bus outage never stops runs).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from apex.config.logging import get_logger
from apex.realtime.bus import EventBus

log = get_logger(__name__)

CLAIM_POLL_S = 0.1
CLAIM_POLL_MAX_S = 1.0


@dataclass(slots=True)
class _UserSlots:
    semaphore: asyncio.Semaphore
    holders: int = 0


class RunSlots:
    def __init__(self, *, per_user: int, total: int, bus: EventBus | None = None) -> None:
        self.per_user = per_user
        self._total = asyncio.Semaphore(total)
        self._users: dict[str, _UserSlots] = {}
        self._bus = bus if bus is not None and bus.shared else None
        self.claimed: dict[str, str] = {}
        """Runs holding a shared slot (`run_id → user_id`), renewed with the heartbeat."""

    @asynccontextmanager
    async def hold(self, user_id: str, run_id: str) -> AsyncIterator[None]:
        entry = self._users.get(user_id)
        if entry is None:
            entry = self._users[user_id] = _UserSlots(asyncio.Semaphore(self.per_user))
        entry.holders += 1
        try:
            async with entry.semaphore:
                await self._claim(user_id, run_id)
                try:
                    async with self._total:
                        yield
                finally:
                    await self._release(run_id)
        finally:
            entry.holders -= 1
            if entry.holders == 0:
                del self._users[user_id]

    async def _claim(self, user_id: str, run_id: str) -> None:
        if self._bus is None:
            return
        delay = CLAIM_POLL_S
        while True:
            try:
                if await self._bus.claim_run_slot(user_id, run_id, self.per_user):
                    self.claimed[run_id] = user_id
                    return
            except Exception as exc:  # noqa: BLE001 - an unreachable bus falls back to local
                log.warning("run_slot_unshared", run_id=run_id, error=repr(exc))
                return
            await asyncio.sleep(delay)
            delay = min(CLAIM_POLL_MAX_S, delay * 1.5)

    async def _release(self, run_id: str) -> None:
        user_id = self.claimed.pop(run_id, None)
        if user_id is None or self._bus is None:
            return
        with contextlib.suppress(Exception):  # an unreleased slot expires with its lease
            await self._bus.release_run_slot(user_id, run_id)
