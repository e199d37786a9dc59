"""When alerts are evaluated: after each commit of a user's rows, and on a schedule.

After a commit (an upload, a demo load, a live-ingestion batch) the committing code calls
its importer's `rows_committed(user_id)`, which calls
`AlertTriggers.evaluate_soon(user_id)` from any thread; evaluations of one user never overlap,
and commits that land while one runs make it run once more, not once each.

The schedule (budgets' periods roll over, today's spend grows, webhooks may be added) runs on
exactly one process per round when several share Redis: each round, the process that sets the
round's key (`SET NX` with an expiry a little shorter than the round) sends the webhook retries
that are due (those a stopped process left owed among them) and evaluates every user with a
budget or recent usage; the others skip it. Without Redis the one process always does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from apex.config.logging import get_logger
from apex.ids import new_id
from apex.monitoring.alerts import AlertEvaluator
from apex.shared_redis.client import redis_client
from apex.shared_redis.errors import RedisError

log = get_logger(__name__)

ROUND_KEY_SHARE = 0.9


class AlertTriggers:
    """Evaluations started by commits: one at a time per user, coalesced."""

    def __init__(self, evaluator: AlertEvaluator) -> None:
        self.evaluator = evaluator
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def evaluate_soon(self, user_id: str) -> None:
        """Safe from any thread: the commit hook of the ledger's writers, and what a budget's
        change calls."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._start, user_id)

    def _start(self, user_id: str) -> None:
        if user_id in self._running:
            self._again.add(user_id)
            return
        self._running[user_id] = asyncio.create_task(self._run(user_id), name="apex-alerts-commit")

    async def _run(self, user_id: str) -> None:
        try:
            while True:
                self._again.discard(user_id)
                try:
                    await self.evaluator.evaluate(user_id)
                except Exception as exc:
                    log.warning("alerts_evaluation_failed", user_id=user_id, error=repr(exc))
                if user_id not in self._again:
                    return
        finally:
            self._running.pop(user_id, None)

    async def wait_idle(self) -> None:
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)


class AlertSchedule:
    def __init__(
        self,
        evaluator: AlertEvaluator,
        users: Callable[[], Awaitable[list[str]]],
        *,
        every_s: float,
        redis_url: str | None,
        prefix: str,
    ) -> None:
        self.evaluator = evaluator
        self.users = users
        self.every_s = every_s
        self._redis = redis_client(redis_url) if redis_url else None
        self._key = f"{prefix}:alerts:round"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="apex-alerts-schedule")

    async def _my_turn(self) -> bool:
        if self._redis is None:
            return True
        try:
            taken = await self._redis.set(
                self._key, new_id(), nx=True, px=int(self.every_s * ROUND_KEY_SHARE * 1000)
            )
        except RedisError as exc:
            log.warning("alerts_round_not_claimed", error=repr(exc))
            return False
        return bool(taken)

    async def run_round(self) -> int:
        """Resume due webhook retries and evaluate every user, if this process has the round;
        returns alerts raised."""
        if not await self._my_turn():
            return 0
        await self._resume_retries()
        raised = 0
        for user_id in await self.users():
            try:
                raised += len(await self.evaluator.evaluate(user_id))
            except Exception as exc:
                log.warning("alerts_evaluation_failed", user_id=user_id, error=repr(exc))
        return raised

    async def _resume_retries(self) -> None:
        try:
            await self.evaluator.webhooks.resume_due()
        except Exception as exc:
            log.warning("webhook_retries_not_resumed", error=repr(exc))

    async def _loop(self) -> None:
        # a restarted process sends the retries already due at once, not a round later (every
        # process may: each attempt is claimed before it is sent, so none goes out twice)
        await self._resume_retries()
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.run_round()
            except Exception as exc:
                log.warning("alerts_round_failed", error=repr(exc))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._redis is not None:
            await self._redis.aclose()
