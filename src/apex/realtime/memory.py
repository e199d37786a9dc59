"""The in-process bus of the embedded deployment: one process, no external service.

Each run's log is a bounded deque. Logs of ended runs are kept for resume until they are older
than the TTL or more than `retained_runs` ended runs are held, so memory stays flat however many
runs a long-lived process executes. A live run's log is never dropped: every run ends (the run
manager guarantees a final event), and its log moves to the ended set then. Publishing yields
to the event loop once, so the connections' writers drain between events even when a workflow
emits in a tight loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from apex.realtime.bus import (
    Admission,
    CancelHandler,
    EventSink,
    Fanout,
    OutageHandler,
    RunEndedError,
    Subscription,
)
from apex.realtime.events import EventDraft, RunEvent


@dataclass(slots=True)
class _RunLog:
    events: deque[RunEvent]
    seq: int = 0
    ended: bool = False
    touched: float = field(default_factory=time.monotonic)


class InProcessEventBus:
    shared = False

    def __init__(self, *, replay_max: int, replay_ttl_s: float, retained_runs: int) -> None:
        self.replay_max = replay_max
        self.replay_ttl_s = replay_ttl_s
        self.retained_runs = retained_runs
        self._live: OrderedDict[str, _RunLog] = OrderedDict()
        self._ended: OrderedDict[str, _RunLog] = OrderedDict()
        self._fanout = Fanout()
        self._cancel_handlers: list[CancelHandler] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._live.clear()
        self._ended.clear()

    def _log_of(self, run_id: str) -> _RunLog | None:
        return self._live.get(run_id) or self._ended.get(run_id)

    async def publish(
        self,
        draft: EventDraft,
        *,
        floor: int = 0,
        slot_limit: int | None = None,
        first: bool = False,
    ) -> RunEvent:
        """`slot_limit` is not checked: this bus is one process's, whose own limit applies.
        Every event reaches the subscribers before this returns, the first as the others."""
        run_id = draft.run_id
        run_log = self._live.get(run_id)
        if run_log is None:
            if run_id in self._ended:
                raise RunEndedError(f"Run {run_id} has already ended.")
            run_log = self._live[run_id] = _RunLog(events=deque(maxlen=self.replay_max))
        run_log.seq = max(run_log.seq, floor) + 1
        event = draft.numbered(run_log.seq)
        run_log.events.append(event)
        run_log.touched = time.monotonic()
        self._live.move_to_end(run_id)
        if event.final:
            run_log.ended = True
            del self._live[run_id]
            self._ended[run_id] = run_log
        self._evict(run_log.touched)
        self._fanout.deliver(event)
        await asyncio.sleep(0)
        return event

    def _evict(self, now: float) -> None:
        expired = now - self.replay_ttl_s
        while self._ended and (
            len(self._ended) > self.retained_runs
            or next(iter(self._ended.values())).touched < expired
        ):
            self._ended.popitem(last=False)

    async def replay(self, run_id: str, after_seq: int = 0) -> list[RunEvent]:
        run_log = self._log_of(run_id)
        if run_log is None:
            return []
        return [event for event in run_log.events if event.seq > after_seq]

    async def subscribe(self, user_id: str, sink: EventSink) -> Subscription:
        self._fanout.add(user_id, sink)

        async def close() -> None:
            self._fanout.remove(user_id, sink)

        return Subscription(close)

    async def request_cancel(self, run_id: str) -> None:
        for handler in tuple(self._cancel_handlers):
            handler(run_id)

    def on_cancel(self, handler: CancelHandler) -> None:
        self._cancel_handlers.append(handler)

    def on_outage(self, handler: OutageHandler) -> None:
        return None

    async def heartbeat(self, worker_id: str) -> None:
        return None

    async def live_workers(self) -> frozenset[str] | None:
        return None

    async def claim_run_slot(self, user_id: str, run_id: str, limit: int) -> bool:
        return True

    async def release_run_slot(self, user_id: str, run_id: str) -> None:
        return None

    async def renew_run_slots(self, held: dict[str, str]) -> None:
        return None

    async def admit_run(
        self, user_id: str, run_id: str, limit: int, *, slot_limit: int | None = None
    ) -> Admission:
        return Admission.ADMITTED

    async def dismiss_run(self, user_id: str, run_id: str) -> None:
        return None

    async def renew_admissions(self, admitted: dict[str, str]) -> None:
        return None

    def retained(self) -> tuple[int, int]:
        """How many live and ended run logs are held (for metrics and tests of the bounds)."""
        return len(self._live), len(self._ended)
