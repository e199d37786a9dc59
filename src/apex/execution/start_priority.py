"""Runs still starting go before the work of runs already started.

A run's first event is what its user waits for after sending a message. When a crowd starts
runs at once, the runs that got theirs first would otherwise go straight on with their state
writes and their workflow, on the same event loop and the same database connections as the
writes and publishes the rest of the crowd's first events wait for, so each early run delayed
the later ones' first events. Instead, a run that has shown its first event waits until no run
is starting any more, and at most `MAX_WAIT_S`: its final event comes that much later at worst,
and the crowd's first events come sooner. A run queued behind its user's own limit does not
count as starting (its own user's runs are what it waits for).
"""

from __future__ import annotations

import asyncio
import contextlib

MAX_WAIT_S = 0.1


class StartPriority:
    def __init__(self, max_wait_s: float = MAX_WAIT_S) -> None:
        self.max_wait_s = max_wait_s
        self._starting: set[str] = set()
        self._none_starting = asyncio.Event()
        self._none_starting.set()

    def starting(self, run_id: str) -> None:
        self._starting.add(run_id)
        self._none_starting.clear()

    def started(self, run_id: str) -> None:
        """The run has shown its first event, or will not start after all (idempotent)."""
        self._starting.discard(run_id)
        if not self._starting:
            self._none_starting.set()

    async def after_starts(self) -> None:
        """Wait while runs are starting, at most `max_wait_s`."""
        if self._starting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._none_starting.wait(), self.max_wait_s)
