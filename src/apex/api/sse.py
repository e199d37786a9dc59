"""Server-Sent Events for one run: the stored events after `Last-Event-ID`, then the live tail.

Same envelopes as the WebSocket (`data:` is the envelope, `id:` its `seq`). The stream ends
after the final event. A consumer too slow for its bounded queue has its stream ended; the
client reconnects with `Last-Event-ID` and loses nothing. A run that has ended but whose final
event the bus no longer holds gets it from the app database, so the stream still ends with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from apex.realtime.bus import EventBus
from apex.realtime.delivery import OrderedFeed
from apex.realtime.events import RunEvent

FINAL_GRACE_S = 2.0

RunStatus = Callable[[], Awaitable[tuple[bool, str | None]]]
"""Whether the run has ended, and its final event as the app database keeps it."""


def sse_frame(event: RunEvent) -> str:
    return f"id: {event.seq}\ndata: {event.wire}\n\n"


class RunEventStream:
    def __init__(
        self,
        bus: EventBus,
        *,
        user_id: str,
        run_id: str,
        after_seq: int,
        queue_size: int,
        keepalive_s: float,
        run_status: RunStatus,
    ) -> None:
        self.bus = bus
        self.user_id = user_id
        self.run_id = run_id
        self.after_seq = after_seq
        self.keepalive_s = keepalive_s
        self.run_status = run_status
        self._queue: asyncio.Queue[RunEvent] = asyncio.Queue(queue_size)
        self._overflowed = False

    def _offer(self, event: RunEvent) -> None:
        if event.run_id != self.run_id or self._overflowed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._overflowed = True

    async def frames(self) -> AsyncIterator[str]:
        """Subscribe first, then replay, so nothing published in between is missed."""
        subscription = await self.bus.subscribe(self.user_id, self._offer)
        feed = OrderedFeed(self.bus, self.user_id)
        try:
            sent = await feed.resume(self.run_id, self.after_seq)
            for event in sent:
                yield sse_frame(event)
                if event.final:
                    return
            last_seq = sent[-1].seq if sent else self.after_seq
            ended, stored_final = await self.run_status()
            while not self._overflowed:
                try:
                    live = await asyncio.wait_for(
                        self._queue.get(), FINAL_GRACE_S if ended else self.keepalive_s
                    )
                except TimeoutError:
                    if ended:
                        _, stored_final = await self.run_status()
                        for event in feed.missing_final([], last_seq, stored_final):
                            yield sse_frame(event)
                        return
                    ended, stored_final = await self.run_status()
                    yield ": keepalive\n\n"
                    continue
                for event in await feed.admit(live):
                    yield sse_frame(event)
                    last_seq = event.seq
                    if event.final:
                        return
        finally:
            await subscription.close()
