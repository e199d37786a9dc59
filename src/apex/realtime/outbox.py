"""Events a process emitted while Redis was unreachable, held in order until it answers again.

The owning process numbers such an event itself (one past the highest `seq` it knows the run
reached), so a run keeps going through a bus outage instead of failing. The outbox is bounded:
past `capacity` the oldest non-final event is dropped (and counted), never a final one, because
each run's final event is the one every client waits for.
"""

from __future__ import annotations

from collections import Counter, deque

from prometheus_client import Counter as Metric
from prometheus_client import Gauge

from apex.realtime.events import RunEvent

EVENTS_BUFFERED = Gauge("apex_events_buffered", "Events waiting for the bus to come back")
EVENTS_DROPPED = Metric(
    "apex_events_dropped_total", "Buffered events dropped because the outbox was full"
)


class Outbox:
    __slots__ = ("capacity", "_queue", "_per_run")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queue: deque[RunEvent] = deque()
        self._per_run: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._queue)

    def holds(self, run_id: str) -> bool:
        """True while an earlier event of the run waits: later ones must queue behind it."""
        return self._per_run[run_id] > 0

    def last_seq(self, run_id: str) -> int:
        for event in reversed(self._queue):
            if event.run_id == run_id:
                return event.seq
        return 0

    def put(self, event: RunEvent) -> None:
        self._queue.append(event)
        self._per_run[event.run_id] += 1
        if len(self._queue) > self.capacity:
            self._drop_oldest_non_final()
        EVENTS_BUFFERED.set(len(self._queue))

    def head(self) -> RunEvent | None:
        return self._queue[0] if self._queue else None

    def pop(self) -> None:
        self._forget(self._queue.popleft())

    def _drop_oldest_non_final(self) -> None:
        for index, event in enumerate(self._queue):
            if not event.final:
                del self._queue[index]
                self._forget(event)
                EVENTS_DROPPED.inc()
                return

    def _forget(self, event: RunEvent) -> None:
        run_id = event.run_id
        self._per_run[run_id] -= 1
        if self._per_run[run_id] <= 0:
            del self._per_run[run_id]
        EVENTS_BUFFERED.set(len(self._queue))
