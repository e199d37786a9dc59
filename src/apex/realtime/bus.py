"""The EventBus protocol every event producer and consumer talks to, and what both buses share.

A bus numbers each run's events (`seq` from 1, gap-free, assigned atomically), keeps a bounded
per-run log for replay, and fans events out live to the subscribers of the run's owner. It also
carries the control plane between processes: cancellation requests and worker heartbeats.
Events are routed by user: a subscriber only ever receives its own user's events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Protocol

from apex.config.logging import get_logger
from apex.errors import Conflict
from apex.realtime.events import EventDraft, RunEvent

log = get_logger(__name__)

EventSink = Callable[[RunEvent], None]
"""Called for each live event; must not block (put it on a queue) and should not raise."""

CancelHandler = Callable[[str], None]
"""Called with a run id whenever any process asks for that run to be cancelled."""

OutageHandler = Callable[[], None]
"""Called when a shared bus may have lost what it stored (its connection failed): the `seq` it
confirmed so far may be gone with it (a Redis restart without persistence)."""


class RunEndedError(Conflict):
    """The run's stream already carries its final event; nothing may follow it."""

    default_code = "run_ended"


class NoFreeSlot(Exception):
    """A run's first event was not published: all of its user's run slots are taken."""


class Admission(IntEnum):
    """What counting a new run among its user's admitted runs gave (true when admitted)."""

    REFUSED = 0
    ADMITTED = 1
    HOLDS_SLOT = 2
    """Admitted, and one of the user's run slots was free and is now the run's."""


class Subscription:
    """A live subscription; `close()` stops delivery and is safe to call twice."""

    __slots__ = ("_close", "_closed")

    def __init__(self, close: Callable[[], Awaitable[None]]) -> None:
        self._close = close
        self._closed = False

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._close()


class EventBus(Protocol):
    shared: bool
    """True when several processes share this bus (events, cancellation and heartbeats cross)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(
        self,
        draft: EventDraft,
        *,
        floor: int = 0,
        slot_limit: int | None = None,
        first: bool = False,
    ) -> RunEvent:
        """Number, store and fan out one event; RunEndedError after the run's final event.

        `floor` is the highest `seq` the caller knows the run has reached: the event is numbered
        above it even if the bus lost the run's state (a Redis restart without persistence).
        With `slot_limit` (a shared bus, the run's first event), the event goes out only if
        fewer than `slot_limit` runs of the user hold a slot, and the run then holds one: the
        claim and the first event take one round trip. NoFreeSlot when none was free.
        `first` says the event is the run's first: with no slot to claim it can only be
        numbered 1, so a shared bus may hand it to this process's subscribers before its
        write returns."""
        ...

    async def replay(self, run_id: str, after_seq: int = 0) -> list[RunEvent]:
        """The stored events of a run with `seq > after_seq`, in order (bounded, may be expired)."""
        ...

    async def subscribe(self, user_id: str, sink: EventSink) -> Subscription:
        """Live events of every run of `user_id`, from the moment this returns."""
        ...

    async def request_cancel(self, run_id: str) -> None:
        """Ask whichever process executes `run_id` to cancel it."""
        ...

    def on_cancel(self, handler: CancelHandler) -> None: ...

    def on_outage(self, handler: OutageHandler) -> None:
        """Call `handler` in the event loop whenever the bus may have lost its state (never,
        for a bus no other process shares: it lives and dies with this process)."""
        ...

    async def heartbeat(self, worker_id: str) -> None:
        """Record that `worker_id` is alive (a no-op for a bus no other process shares)."""
        ...

    async def live_workers(self) -> frozenset[str] | None:
        """Workers that heartbeat recently; None when the bus is not shared, or when it cannot
        judge yet (it reconnected, or the heartbeat record is younger than the lost-after time)."""
        ...

    async def claim_run_slot(self, user_id: str, run_id: str, limit: int) -> bool:
        """Take one of the user's `limit` run slots across every process sharing the bus (True
        when not shared: the process's own limit is then the only one)."""
        ...

    async def release_run_slot(self, user_id: str, run_id: str) -> None: ...

    async def renew_run_slots(self, held: dict[str, str]) -> None:
        """Keep the slots of this process's executing runs (`run_id → user_id`) alive."""
        ...

    async def admit_run(
        self, user_id: str, run_id: str, limit: int, *, slot_limit: int | None = None
    ) -> Admission:
        """Count the run among the user's `limit` admitted runs (executing or waiting) across
        every process sharing the bus; REFUSED when there are `limit` already (ADMITTED when
        not shared: the process's own count is then the only one). With `slot_limit`, an
        admitted run also takes one of the user's `slot_limit` run slots if one is free, in the
        same round trip (HOLDS_SLOT)."""
        ...

    async def dismiss_run(self, user_id: str, run_id: str) -> None: ...

    async def renew_admissions(self, admitted: dict[str, str]) -> None:
        """Keep the admissions of this process's runs (`run_id → user_id`) alive."""
        ...


class Fanout:
    """Sinks by user; delivery is synchronous and isolated, so one bad sink cannot stop others."""

    __slots__ = ("_sinks",)

    def __init__(self) -> None:
        self._sinks: dict[str, list[EventSink]] = {}

    def add(self, user_id: str, sink: EventSink) -> bool:
        """Register a sink; True when it is the user's first."""
        sinks = self._sinks.setdefault(user_id, [])
        sinks.append(sink)
        return len(sinks) == 1

    def remove(self, user_id: str, sink: EventSink) -> bool:
        """Unregister a sink; True when the user has none left."""
        sinks = self._sinks.get(user_id)
        if sinks is None:
            return False
        if sink in sinks:
            sinks.remove(sink)
        if sinks:
            return False
        del self._sinks[user_id]
        return True

    def has(self, user_id: str) -> bool:
        return user_id in self._sinks

    def deliver(self, event: RunEvent) -> None:
        for sink in tuple(self._sinks.get(event.user_id, ())):
            try:
                sink(event)
            except Exception:
                log.exception("event_sink_failed", run_id=event.run_id)
