"""Admission of runs: a per-user limit and a process-wide limit on runs executing at once.

A run that finds no free slot waits (its state stays `pending`), first for one of its user's
slots and then for a global one, in arrival order. Idle users hold no memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(slots=True)
class _UserSlots:
    semaphore: asyncio.Semaphore
    holders: int = 0


class RunSlots:
    def __init__(self, *, per_user: int, total: int) -> None:
        self.per_user = per_user
        self._total = asyncio.Semaphore(total)
        self._users: dict[str, _UserSlots] = {}

    @asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        entry = self._users.get(user_id)
        if entry is None:
            entry = self._users[user_id] = _UserSlots(asyncio.Semaphore(self.per_user))
        entry.holders += 1
        try:
            async with entry.semaphore, self._total:
                yield
        finally:
            entry.holders -= 1
            if entry.holders == 0:
                del self._users[user_id]
