"""RunState and the one state machine, persisted in the runs table through one tracker.

pending → starting → running → completing → completed, and from any live state to failed,
timeout or cancelled. Terminal states never change. An illegal change raises, whether it is
illegal by the rules or because another party ended the run first.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from apex.errors import Conflict, NotFound
from apex.execution.context import UserExecutionContext
from apex.store.repositories.runs import RunRepository
from apex.store.types import utcnow


class RunState(StrEnum):
    PENDING = "pending"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETING = "completing"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def live(self) -> bool:
        return not self.terminal


TERMINAL_STATES = frozenset(
    {RunState.COMPLETED, RunState.FAILED, RunState.TIMEOUT, RunState.CANCELLED}
)
LIVE_STATES = frozenset(RunState) - TERMINAL_STATES
_ENDINGS = frozenset({RunState.FAILED, RunState.TIMEOUT, RunState.CANCELLED})
_FORWARD = {
    RunState.PENDING: RunState.STARTING,
    RunState.STARTING: RunState.RUNNING,
    RunState.RUNNING: RunState.COMPLETING,
    RunState.COMPLETING: RunState.COMPLETED,
}


class IllegalRunTransition(Conflict):
    default_code = "illegal_run_transition"

    def __init__(self, current: RunState, target: RunState) -> None:
        super().__init__(
            f"A run cannot go from {current.value} to {target.value}.",
            details={"from": current.value, "to": target.value},
        )
        self.current = current
        self.target = target


def can_transition(current: RunState, target: RunState) -> bool:
    if current.terminal:
        return False
    return target in _ENDINGS or _FORWARD.get(current) is target


def require_transition(current: RunState, target: RunState) -> None:
    if not can_transition(current, target):
        raise IllegalRunTransition(current, target)


class RunTracker:
    """Applies the state machine to the runs table, compare-and-set so concurrent enders race safely."""

    def __init__(self, runs: RunRepository) -> None:
        self.runs = runs

    async def current(self, ctx: UserExecutionContext) -> RunState:
        state = await self.runs.state_of(ctx.user_id, ctx.run_id)
        if state is None:
            raise NotFound("No such run.", code="run_not_found")
        return RunState(state)

    async def transition(
        self,
        ctx: UserExecutionContext,
        target: RunState,
        *,
        expected: RunState | None = None,
        reply: str | None = None,
        **values: Any,
    ) -> RunState:
        """Move the run to `target` and return the state it left.

        `expected` skips a read when the caller knows the state; if it is stale the stored
        state is re-read and the rules applied to it.
        """
        current = expected or await self.current(ctx)
        stamps: dict[str, Any] = {}
        if target is RunState.STARTING:
            stamps["started_at"] = utcnow()
        if target.terminal:
            stamps["finished_at"] = utcnow()
        while True:
            require_transition(current, target)
            if await self.runs.compare_and_set(
                user_id=ctx.user_id,
                run_id=ctx.run_id,
                expected=current.value,
                target=target.value,
                values={**stamps, **values},
                reply=reply,
                report=values.get("report"),
            ):
                return current
            current = await self.current(ctx)
