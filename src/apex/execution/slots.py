"""Admission of runs: a per-user limit and a process-wide limit on runs executing at once, and
the per-user count of runs admitted (executing or waiting).

A run that finds no free slot waits (its state stays `pending`), first for one of its user's
slots and then for a global one, in arrival order. Idle users hold no memory. When processes
share a bus, the per-user limit is also claimed there, so it holds across processes: a run
waits until fewer than `per_user` of its user's runs execute anywhere. If the bus does not
answer, the process's own limit is the one applied (a bus outage never stops runs). The count
of a user's admitted runs is shared the same way, so the limit on runs in progress or waiting
(`max_runs_per_user + max_queued_runs_per_user`) also holds across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from apex.config.logging import get_logger
from apex.realtime.bus import Admission, EventBus, NoFreeSlot

log = get_logger(__name__)

CLAIM_POLL_S = 0.1
CLAIM_POLL_MAX_S = 1.0

Opening = Callable[[int | None], Awaitable[object]]
"""A run's first step, given the per-user limit to claim a shared slot with (None: no claim)."""


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
        self.admitted: dict[str, str] = {}
        """Runs counted among their user's admitted runs on the shared bus, likewise renewed."""

    async def admit(self, user_id: str, run_id: str, allowed: int) -> bool:
        """Count a new run among its user's `allowed` runs in progress or waiting, across the
        processes sharing the bus (the caller has checked this process's own count); False
        when the user has that many already. A bus that does not answer admits it.

        A run that would open at once here also takes its user's shared slot in the same
        round trip when one is free: its first event then has nothing left to claim, so this
        process's sockets get it without waiting for Redis."""
        if self._bus is None:
            return True
        try:
            admission = await self._bus.admit_run(
                user_id,
                run_id,
                allowed,
                slot_limit=self.per_user if self.opens_at_once(user_id) else None,
            )
        except Exception as exc:
            log.warning("run_admission_unshared", run_id=run_id, error=repr(exc))
            return True
        if admission is Admission.REFUSED:
            return False
        self.admitted[run_id] = user_id
        if admission is Admission.HOLDS_SLOT:
            self.claimed[run_id] = user_id
        return True

    async def dismiss(self, run_id: str) -> None:
        """The run has ended (or was never created): it no longer counts for its user, nor
        holds a shared slot (both let go at once: a run's final event waits for this)."""
        await asyncio.gather(self._release(run_id), self._unadmit(run_id))

    async def _unadmit(self, run_id: str) -> None:
        user_id = self.admitted.pop(run_id, None)
        if user_id is None or self._bus is None:
            return
        with contextlib.suppress(Exception):  # an unreleased admission expires with its lease
            await self._bus.dismiss_run(user_id, run_id)

    def opens_at_once(self, user_id: str) -> bool:
        """Would a run of `user_id` entering `hold` now open without waiting for this process's
        slots? (A shared slot held by another process can still make it wait.)"""
        entry = self._users.get(user_id)
        return not self._total.locked() and (entry is None or not entry.semaphore.locked())

    @asynccontextmanager
    async def hold(self, user_id: str, run_id: str, opening: Opening) -> AsyncIterator[None]:
        """Wait for the run's slots, take its first step (`opening`, its first event) and hold
        them while the body executes. On a shared bus the user's shared slot normally came
        with the run's admission, or else is claimed by its first event (one round trip for
        both); when none is free, or this process has no global slot free, the run waits as
        described above and then opens."""
        entry = self._users.get(user_id)
        if entry is None:
            entry = self._users[user_id] = _UserSlots(asyncio.Semaphore(self.per_user))
        entry.holders += 1
        try:
            async with entry.semaphore:
                try:
                    await self._open(user_id, run_id, opening)
                    try:
                        yield
                    finally:
                        self._total.release()
                finally:
                    await self._release(run_id)
        finally:
            entry.holders -= 1
            if entry.holders == 0:
                del self._users[user_id]

    async def _open(self, user_id: str, run_id: str, opening: Opening) -> None:
        """Take a global slot (and the shared one) and run `opening`; on return the global slot
        is held, on an exception it is not."""
        if run_id not in self.claimed and self._bus is not None and not self._total.locked():
            await self._total.acquire()  # free: taken without waiting
            try:
                await opening(self.per_user)
            except NoFreeSlot:
                self._total.release()
            except BaseException:
                self.claimed[run_id] = user_id  # the claim may have landed: release it
                self._total.release()
                raise
            else:
                self.claimed[run_id] = user_id
                return
        if run_id not in self.claimed:  # else its shared slot came with its admission
            await self._claim(user_id, run_id)
        await self._total.acquire()
        try:
            await opening(None)
        except BaseException:
            self._total.release()
            raise

    async def _claim(self, user_id: str, run_id: str) -> None:
        if self._bus is None:
            return
        delay = CLAIM_POLL_S
        while True:
            try:
                if await self._bus.claim_run_slot(user_id, run_id, self.per_user):
                    self.claimed[run_id] = user_id
                    return
            except Exception as exc:
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
