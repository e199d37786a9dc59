"""Full garbage collections wait while runs are starting.

A full collection (CPython's oldest generation) walks every long-lived object of the process
with the event loop stopped. With 1,000 open WebSocket connections (about 200 tracked objects
each) that took 80–350 ms on a loaded two-core machine, and the allocations of a crowd starting
runs at once are what triggers one: the stall landed on the crowd's first events, all of them
delayed together (time to first event p50 ≈ p99 ≈ 200 ms with 50 runs at once).

So while runs are starting, the oldest generation is not collected: it is allowed again once no
run has started for `QUIET_S`, and at the latest `MAX_HOLD_S` after the hold began (then runs
starting during the next `QUIET_S` do not hold it again), so cyclic garbage never waits long.
Young collections go on as usual, and whether a full collection is due is still CPython's own
decision, taken once the hold ends. The setting is process-wide, like the collector.
"""

from __future__ import annotations

import asyncio
import gc
import time

QUIET_S = 1.0
MAX_HOLD_S = 5.0
_HELD_THRESHOLD = 1 << 30  # young collections between full ones: never reached


class _Hold:
    def __init__(self) -> None:
        self.restore: int | None = None  # the oldest generation's threshold while held
        self.began = 0.0
        self.last_start = 0.0
        self.free_until = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_loop: asyncio.AbstractEventLoop | None = None

    def run_starting(self) -> None:
        now = time.monotonic()
        if now < self.free_until:
            return
        self.last_start = now
        if self.restore is None:
            young, middle, oldest = gc.get_threshold()
            self.restore, self.began = oldest, now
            gc.set_threshold(young, middle, _HELD_THRESHOLD)
        elif now - self.began >= MAX_HOLD_S:
            self.release()
            self.free_until = now + QUIET_S
            return
        loop = asyncio.get_running_loop()
        if self.timer is None or self.timer_loop is not loop:  # (a loop closed meanwhile)
            if self.timer is not None:
                self.timer.cancel()
            self.timer, self.timer_loop = loop.call_later(QUIET_S, self._check), loop

    def _check(self) -> None:
        """Release once no run has started for `QUIET_S`, else look again when that is due."""
        self.timer = None
        quiet_for = time.monotonic() - self.last_start
        if quiet_for >= QUIET_S:
            self.release()
        else:
            loop = asyncio.get_running_loop()  # the timer's own loop runs this
            self.timer = loop.call_later(QUIET_S - quiet_for, self._check)

    def release(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.restore is not None:
            young, middle, _held = gc.get_threshold()
            gc.set_threshold(young, middle, self.restore)
            self.restore = None


_hold = _Hold()


def run_starting() -> None:
    """A run is starting: hold full collections off until runs stop starting for a moment."""
    _hold.run_starting()


def release() -> None:
    """Allow full collections again now, and let the next run start a new hold (the run
    manager closes: a later one in the same process begins afresh)."""
    _hold.release()
    _hold.free_until = 0.0
