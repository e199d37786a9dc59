"""Per-consumer ordering: each run's events leave in `seq` order, with no gap and no duplicate.

A consumer (a WebSocket connection, an SSE stream) keeps a cursor per run: the last `seq` it
delivered. An event at or below the cursor is a duplicate and dropped; an event beyond
`cursor + 1` means something was missed (a replay racing the live tail, a pub/sub hiccup), and
the missing events are read from the bus's log first. A run first seen mid-stream (it began
before the consumer subscribed) is left alone until the consumer resumes it explicitly: that way
a resume after a reconnect replays exactly what was missed.
"""

from __future__ import annotations

from apex.realtime.bus import EventBus
from apex.realtime.events import RunEvent


class OrderedFeed:
    __slots__ = ("bus", "user_id", "_cursors")

    def __init__(self, bus: EventBus, user_id: str) -> None:
        self.bus = bus
        self.user_id = user_id
        self._cursors: dict[str, int] = {}

    def follow(self, run_id: str, after_seq: int = 0) -> None:
        """Deliver this run's events after `after_seq` from now on (used for runs one starts)."""
        self._cursors[run_id] = after_seq

    async def admit(self, event: RunEvent) -> list[RunEvent]:
        """What to send, in order, now that `event` arrived live (possibly nothing)."""
        if event.user_id != self.user_id:
            return []
        cursor = self._cursors.get(event.run_id)
        if cursor is None:
            if event.seq != 1:
                return []
            cursor = 0
        if event.seq <= cursor:
            return []
        batch: list[RunEvent] = []
        if event.seq > cursor + 1:
            stored = await self.bus.replay(event.run_id, after_seq=cursor)
            batch.extend(e for e in stored if e.seq < event.seq)
        batch.append(event)
        self._advance(event.run_id, batch)
        return batch

    async def resume(
        self, run_id: str, after_seq: int, stored_final: str | None = None
    ) -> list[RunEvent]:
        """The stored events after `after_seq`; the live tail continues from the last of them.

        `stored_final` is the run's final event as the app database keeps it: sent when the
        bus's log no longer has it (expired, or lost with a Redis restart)."""
        self._cursors[run_id] = after_seq
        batch = [
            e
            for e in await self.bus.replay(run_id, after_seq=after_seq)
            if e.user_id == self.user_id
        ]
        batch.extend(self.missing_final(batch, after_seq, stored_final))
        self._advance(run_id, batch)
        return batch

    def missing_final(
        self, sent: list[RunEvent], after_seq: int, stored_final: str | None
    ) -> list[RunEvent]:
        """The stored final event, unless `sent` (events after `after_seq`) already ends with it."""
        if stored_final is None or (sent and sent[-1].final):
            return []
        final = RunEvent.from_wire(stored_final)
        last = sent[-1].seq if sent else after_seq
        return [final] if final.user_id == self.user_id and final.seq > last else []

    def _advance(self, run_id: str, batch: list[RunEvent]) -> None:
        if not batch:
            return
        if batch[-1].final:
            self._cursors.pop(run_id, None)
        else:
            self._cursors[run_id] = batch[-1].seq
