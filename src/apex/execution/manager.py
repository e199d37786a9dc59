"""The RunManager: runs are independent of any connection, bounded, cancellable and always end.

`start(ctx, text)` persists the run and the user's message and returns at once; the workflow then
executes in a task of this process under the per-user and global limits and the run timeout. The
manager emits the supervisor's `agent_started` first and exactly one final event last, and the
state machine (compare-and-set in the runs table) decides who may end a run: the run itself, a
cancel, a shutdown, or another process recovering it after its own process died.

Faults: state writes that meet an app-database outage are retried until they land (bounded by
the run timeout for the steps before the end, by `run_store_retry_s` for the end itself), so a
run's end is never lost to a short outage; once its final event is out, that event and the
run's last `seq` are recorded with the run, for clients that missed it and for a bus that lost
the run's numbering. A sweep ends this process's own runs that no task executes any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import socket
from collections import Counter as Tally
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client import Counter, Gauge

from apex.config import Settings
from apex.config.logging import bind_context, get_logger
from apex.errors import ApexError, BadRequest, NotFound, RateLimited, ServiceUnavailable
from apex.execution import collector
from apex.execution.context import UserExecutionContext
from apex.execution.dispatcher import ToolDispatcher
from apex.execution.emitter import RunBrackets, RunEmitter
from apex.execution.slots import RunSlots
from apex.execution.start_priority import StartPriority
from apex.execution.state import LIVE_STATES, IllegalRunTransition, RunState, RunTracker
from apex.execution.store_retry import retry_store
from apex.execution.workflow import ThreadMessage, Workflow, WorkflowContext, WorkflowOutcome
from apex.ids import new_id
from apex.realtime.bus import EventBus, RunEndedError
from apex.realtime.events import RunEvent
from apex.store.database import Database, is_unreachable
from apex.store.models import Run
from apex.store.repositories.messages import MessageRepository
from apex.store.repositories.runs import RunRepository
from apex.store.repositories.threads import ThreadRepository, title_from_text
from apex.store.types import utcnow

log = get_logger(__name__)

TEXT_MAX_CHARS = 20_000
HISTORY_MESSAGES = 50
RECOVERY_GRACE_S = 2.0

RUNS_FINISHED = Counter("apex_runs_finished_total", "Runs that reached a terminal state", ["state"])
RUNS_LIVE = Gauge("apex_runs_live", "Runs of this process not yet ended")


class _RunTimedOut(Exception):
    """The workflow overran the run timeout (distinct from a TimeoutError raised inside it)."""


@dataclass(frozen=True, slots=True)
class RunTicket:
    run_id: str
    thread_id: str
    state: RunState


class _LiveRun:
    __slots__ = (
        "ctx",
        "text",
        "emitter",
        "task",
        "state",
        "stop_reason",
        "finishing",
        "begun",
        "counted",
    )

    def __init__(self, ctx: UserExecutionContext, text: str, emitter: RunEmitter) -> None:
        self.ctx = ctx
        self.text = text
        self.emitter = emitter
        self.task: asyncio.Task[None] | None = None
        self.state = RunState.PENDING
        self.stop_reason: str | None = None
        self.finishing = False
        self.begun = False
        self.counted = True  # among its user's runs in progress or waiting

    def stop(self, reason: str) -> None:
        """Ask the run to end. A task cancelled before its first step would never run its
        handlers, so a run that has not begun only records the reason and ends as it begins;
        a run already finishing (storing its answer, or ending) is let finish."""
        if self.stop_reason or self.finishing or self.task is None:
            return
        self.stop_reason = reason
        if self.begun:
            self.task.cancel()


def _worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{new_id()[-8:]}"


def clean_text(text: object) -> str:
    """The user's question as a run accepts it: a non-empty string of bounded length."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("`text` must be a non-empty string.", code="missing_text")
    if len(text) > TEXT_MAX_CHARS:
        raise BadRequest(f"`text` is limited to {TEXT_MAX_CHARS} characters.", code="text_too_long")
    return text.strip()


class RunManager:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        bus: EventBus,
        workflow: Workflow,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.workflow = workflow
        self.worker_id = worker_id or _worker_id()
        self.runs = RunRepository(db)
        self.threads = ThreadRepository(db)
        self.messages = MessageRepository(db)
        self.tracker = RunTracker(self.runs)
        self._slots = RunSlots(
            per_user=settings.max_runs_per_user, total=settings.max_runs_global, bus=bus
        )
        self._live: dict[str, _LiveRun] = {}
        self._per_user: Tally[str] = Tally()
        self.starts = StartPriority()
        """Runs that have shown their first event let the runs still starting go first."""
        self._loops: list[asyncio.Task[None]] = []
        self._recording: set[asyncio.Task[None]] = set()
        self._closing = False

    # lifecycle
    async def open(self) -> None:
        self.bus.on_cancel(self._on_cancel_request)
        self.bus.on_outage(self._on_bus_outage)
        if self.bus.shared:
            await self._beat()
            self._loops = [
                asyncio.create_task(self._heartbeat_loop(), name="apex-run-heartbeat"),
                asyncio.create_task(self._recovery_loop(), name="apex-run-recovery"),
            ]
        else:
            await self._fail_abandoned_without_events()
            self._loops = [asyncio.create_task(self._recovery_loop(), name="apex-run-recovery")]

    async def close(self) -> None:
        """End every run of this process (`failed`, code `server_shutdown`), then stop.

        A run already storing its answer is let finish: it is moments from `completed`."""
        self._closing = True
        collector.release()
        for loop in self._loops:
            loop.cancel()
        tasks = [live.task for live in self._live.values() if live.task is not None]
        for live in list(self._live.values()):
            live.stop("shutdown")
        await asyncio.gather(*self._loops, *tasks, return_exceptions=True)
        await asyncio.gather(*self._recording, return_exceptions=True)

    # starting
    async def submit(
        self, *, user_id: str, text: object, request_id: str, thread_id: str | None = None
    ) -> RunTicket:
        """Validate, open the thread when none is given, and start the run."""
        question = clean_text(text)
        self._admit(user_id)
        ctx = UserExecutionContext(
            user_id=user_id, thread_id=thread_id or new_id(), run_id=new_id(), request_id=request_id
        )
        await self.start(
            ctx, question, new_thread_title=title_from_text(question) if thread_id is None else None
        )
        return RunTicket(run_id=ctx.run_id, thread_id=ctx.thread_id, state=RunState.PENDING)

    @property
    def _allowed_per_user(self) -> int:
        return self.settings.max_runs_per_user + self.settings.max_queued_runs_per_user

    def _admit(self, user_id: str) -> None:
        """This process's own count; `start` then counts the run across processes."""
        if self._closing:
            raise ServiceUnavailable(
                "The server is shutting down; try again shortly.", code="shutting_down"
            )
        if self._per_user[user_id] >= self._allowed_per_user:
            raise self._too_many_runs()

    def _too_many_runs(self) -> RateLimited:
        return RateLimited(
            f"You already have {self._allowed_per_user} runs in progress or waiting.",
            retry_after_s=5,
            code="too_many_runs",
        )

    async def start(
        self, ctx: UserExecutionContext, text: str, *, new_thread_title: str | None = None
    ) -> str:
        """Persist the run (pending) and the user's message (and, with `new_thread_title`, the
        thread `ctx.thread_id`), schedule it, return its id."""
        self._admit(ctx.user_id)
        collector.run_starting()
        self.starts.starting(ctx.run_id)
        try:
            if not await self._slots.admit(ctx.user_id, ctx.run_id, self._allowed_per_user):
                raise self._too_many_runs()
            try:
                await self.runs.create(
                    run_id=ctx.run_id,
                    user_id=ctx.user_id,
                    thread_id=ctx.thread_id,
                    text=text,
                    worker_id=self.worker_id,
                    new_thread_title=new_thread_title,
                )
            except BaseException:
                await self._slots.dismiss(ctx.run_id)
                raise
        except BaseException:
            self.starts.started(ctx.run_id)
            raise
        live = _LiveRun(ctx, text, RunEmitter(ctx, self.bus, task=text))
        live.emitter.before_final = lambda: self._release(live)
        self._live[ctx.run_id] = live
        self._per_user[ctx.user_id] += 1
        RUNS_LIVE.inc()
        live.task = asyncio.create_task(
            self._execute(live), name=f"apex-run-{ctx.run_id}", context=contextvars.Context()
        )
        return ctx.run_id

    # reading and stopping
    async def get(self, user_id: str, run_id: str) -> Run:
        run = await self.runs.get(user_id, run_id)
        if run is None:
            raise NotFound("No such run.", code="run_not_found")
        return run

    async def cancel(self, user_id: str, run_id: str) -> RunState:
        """Ask the run to stop wherever it executes; idempotent. Returns the state seen now."""
        run = await self.get(user_id, run_id)
        state = RunState(run.state)
        if state.terminal:
            return state
        live = self._live.get(run_id)
        if live is not None:
            live.stop("cancelled")
        elif self.bus.shared:
            await self.bus.request_cancel(run_id)
        else:
            await self._end_abandoned(run, RunState.CANCELLED)
        return state

    def _on_cancel_request(self, run_id: str) -> None:
        live = self._live.get(run_id)
        if live is not None:
            live.stop("cancelled")

    def _on_bus_outage(self) -> None:
        """The bus may have lost the runs' numbering (a Redis restart without persistence): it
        goes on from each emitter's floor, but should this process die before its runs publish
        again, nothing would remember it. So every live run's high-water mark is recorded in the
        app database now, and after each of its events from now on (the runs alive in an outage
        pay one write per event; other runs, and the embedded bus, none)."""
        for live in self._live.values():
            emitter = live.emitter
            if emitter.record_seq is None:
                emitter.record_seq = self._record_seq
                if emitter.last_seq:
                    task = asyncio.get_running_loop().create_task(
                        self._record_seq(
                            live.ctx.run_id,
                            emitter.last_seq,
                            retry_s=self.settings.run_store_retry_s,
                        )
                    )
                    self._recording.add(task)  # the loop keeps only a weak reference
                    task.add_done_callback(self._recording.discard)

    async def _record_seq(self, run_id: str, seq: int, *, retry_s: float = 0.0) -> None:
        """One attempt per event (the next event's write carries a higher mark anyway); the
        mark taken when the outage begins is retried through a database outage."""
        try:
            await retry_store(
                lambda: self.runs.record_seq(run_id, seq), what="run seq", give_up_after_s=retry_s
            )
        except Exception as exc:
            log.warning("run_seq_not_recorded", run_id=run_id, error=repr(exc))

    # executing
    async def _execute(self, live: _LiveRun) -> None:
        live.begun = True
        ctx = live.ctx
        bind_context(user_id=ctx.user_id, run_id=ctx.run_id, request_id=ctx.request_id)
        try:
            if live.stop_reason:
                raise asyncio.CancelledError
            if not self._slots.opens_at_once(ctx.user_id):
                self.starts.started(ctx.run_id)  # queued: its own user's runs go first
            # the first event goes out before the state writes: a client waits for nothing
            async with self._slots.hold(ctx.user_id, ctx.run_id, live.emitter.start_supervisor):
                self.starts.started(ctx.run_id)
                await self.starts.after_starts()
                await self._advance(live, RunState.STARTING)
                await self._advance(live, RunState.RUNNING)
                outcome = await self._run_workflow(live)
                live.finishing = True
                await self._advance(live, RunState.COMPLETING)
                await self._store_transition(
                    ctx,
                    RunState.COMPLETED,
                    expected=live.state,
                    reply=outcome.final_response,
                    final_response=outcome.final_response,
                    report=dict(outcome.report),
                )
                RUNS_FINISHED.labels(RunState.COMPLETED.value).inc()
                await self._record_final(
                    ctx,
                    await live.emitter.finish_completed(
                        outcome.final_response, outcome.report, summary=outcome.summary
                    ),
                )
        except asyncio.CancelledError:
            if live.stop_reason == "cancelled":
                await self._end(live, RunState.CANCELLED)
            else:
                await self._end(
                    live,
                    RunState.FAILED,
                    "server_shutdown",
                    "The server shut down while the run was in progress.",
                )
        except _RunTimedOut:
            await self._end(
                live,
                RunState.TIMEOUT,
                "run_timeout",
                f"The run took longer than {self.settings.run_timeout_s:g} s.",
            )
        except (IllegalRunTransition, RunEndedError):
            log.warning("run_ended_elsewhere", run_id=ctx.run_id)
        except ApexError as exc:
            await self._end(live, RunState.FAILED, exc.code, exc.message)
        except Exception as exc:
            if is_unreachable(exc):
                log.warning("run_store_unavailable", error=repr(exc))
                await self._end(
                    live,
                    RunState.FAILED,
                    "store_unavailable",
                    "The app database did not answer during the run.",
                )
            else:
                log.exception("run_failed", error=repr(exc))
                await self._end(
                    live, RunState.FAILED, "workflow_error", "The run failed unexpectedly."
                )
        finally:
            self._forget(live)
            await self._release(live)

    async def _run_workflow(self, live: _LiveRun) -> WorkflowOutcome:
        ctx = live.ctx
        earlier = await self.messages.history(
            ctx.user_id, ctx.thread_id, excluding_run=ctx.run_id, limit=HISTORY_MESSAGES
        )
        context = WorkflowContext(
            ctx=ctx,
            text=live.text,
            history=tuple(
                ThreadMessage(
                    role=m.role,
                    text=m.text,
                    run_id=m.run_id,
                    created_at=m.created_at,
                    report=m.report,
                )
                for m in earlier
            ),
            events=live.emitter,
            tools=ToolDispatcher(live.emitter, default_timeout_s=self.settings.tool_timeout_s),
        )
        deadline = asyncio.timeout(self.settings.run_timeout_s)
        try:
            async with deadline:
                return await self.workflow.run(context)
        except TimeoutError:
            if deadline.expired():
                raise _RunTimedOut from None
            raise

    async def _advance(self, live: _LiveRun, target: RunState) -> None:
        await self._store_transition(
            live.ctx, target, expected=live.state, give_up_after_s=self.settings.run_timeout_s
        )
        live.state = target

    async def _store_transition(
        self,
        ctx: UserExecutionContext,
        target: RunState,
        *,
        give_up_after_s: float | None = None,
        **values: Any,
    ) -> None:
        """The tracker's transition, retried through a database outage. When an attempt that
        failed had in fact committed, the retry finds the run already at `target`: ours."""
        interrupted = False

        async def attempt() -> None:
            nonlocal interrupted
            try:
                await self.tracker.transition(ctx, target, **values)
            except IllegalRunTransition as exc:
                if not (interrupted and exc.current is target):
                    raise
            except Exception as exc:
                interrupted = interrupted or is_unreachable(exc)
                raise

        await retry_store(
            attempt,
            what=f"run {target.value}",
            give_up_after_s=give_up_after_s or self.settings.run_store_retry_s,
        )

    async def _record_final(self, ctx: UserExecutionContext, final: RunEvent | None) -> None:
        """Keep the final event with the run (for clients that missed it) once it is out."""
        if final is None:
            return
        try:
            await retry_store(
                lambda: self.runs.record_final(ctx.run_id, final.seq, final.wire),
                what="final event",
                give_up_after_s=self.settings.run_store_retry_s,
            )
        except Exception as exc:
            log.warning("final_event_not_recorded", run_id=ctx.run_id, error=repr(exc))

    async def _end(
        self, live: _LiveRun, target: RunState, code: str | None = None, message: str | None = None
    ) -> None:
        """Move to a terminal state and, only if this call won that race, emit the final event."""
        live.finishing = True
        try:
            await self._store_transition(live.ctx, target, error_code=code, error_message=message)
        except IllegalRunTransition:
            return
        except Exception as exc:
            log.error("run_end_not_stored", run_id=live.ctx.run_id, error=repr(exc))
            return
        RUNS_FINISHED.labels(target.value).inc()
        await self._emit_final(live.emitter, target, code, message)

    async def _emit_final(
        self, emitter: RunEmitter, target: RunState, code: str | None, message: str | None
    ) -> None:
        try:
            if target is RunState.CANCELLED:
                final = await emitter.finish_stopped()
            else:
                final = await emitter.finish_error(
                    target.value, code or "run_failed", message or ""
                )
        except RunEndedError:
            return
        except Exception as exc:
            log.exception("final_event_failed", run_id=emitter.ctx.run_id, error=repr(exc))
            return
        await self._record_final(emitter.ctx, final)

    def _forget(self, live: _LiveRun) -> None:
        self.starts.started(live.ctx.run_id)
        if self._live.pop(live.ctx.run_id, None) is not None:
            RUNS_LIVE.dec()
            self._uncount(live)

    def _uncount(self, live: _LiveRun) -> None:
        if live.counted:
            live.counted = False
            self._per_user[live.ctx.user_id] -= 1
            if self._per_user[live.ctx.user_id] <= 0:
                del self._per_user[live.ctx.user_id]

    async def _release(self, live: _LiveRun) -> None:
        """The run stops counting against its user's limits, here and across processes: just
        before its final event goes out (and at the latest when it is forgotten), so a client
        that has seen the final event can start its next run at once."""
        self._uncount(live)
        await self._slots.dismiss(live.ctx.run_id)

    # runs whose process is gone
    async def _end_abandoned(
        self, run: Run, target: RunState, code: str | None = None, message: str | None = None
    ) -> None:
        ctx = UserExecutionContext(
            user_id=run.user_id, thread_id=run.thread_id, run_id=run.id, request_id=new_id()
        )
        try:
            await self.tracker.transition(ctx, target, error_code=code, error_message=message)
        except IllegalRunTransition:
            return
        RUNS_FINISHED.labels(target.value).inc()
        stored = await self.bus.replay(run.id)
        brackets = RunBrackets.replayed(stored)
        last_seq = max([run.last_seq or 0, *(e.seq for e in stored)])
        # a bus that lost the run's log still leaves its recorded high-water mark: the run began
        brackets.started = brackets.started or last_seq > 0
        await self._emit_final(
            RunEmitter(ctx, self.bus, task=run.text, brackets=brackets, last_seq=last_seq),
            target,
            code,
            message,
        )

    async def _fail_abandoned_without_events(self) -> None:
        """Embedded mode, at start: runs a previous process left live can only be dead. Their
        in-memory event logs died with it, so only the stored state is corrected."""
        for run in await self.runs.live_runs(
            states=[s.value for s in LIVE_STATES],
            not_on_workers=[self.worker_id],
            created_before=utcnow(),
        ):
            ctx = UserExecutionContext(
                user_id=run.user_id, thread_id=run.thread_id, run_id=run.id, request_id=new_id()
            )
            with contextlib.suppress(IllegalRunTransition):
                await self.tracker.transition(
                    ctx,
                    RunState.FAILED,
                    error_code="worker_lost",
                    error_message="The server restarted during the run.",
                )

    async def _beat(self) -> None:
        try:
            await self.bus.heartbeat(self.worker_id)
        except Exception as exc:
            log.warning("run_heartbeat_failed", error=repr(exc))

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.worker_heartbeat_s)
            await self._beat()
            try:
                await self.bus.renew_run_slots(dict(self._slots.claimed))
                await self.bus.renew_admissions(dict(self._slots.admitted))
            except Exception as exc:
                log.warning("run_slots_not_renewed", error=repr(exc))

    async def _recovery_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.worker_heartbeat_s)
            try:
                await self.end_orphaned_runs()
                await self.recover_lost_runs()
            except Exception as exc:
                log.warning("run_recovery_failed", error=repr(exc))

    async def end_orphaned_runs(self) -> int:
        """End (`failed`, code `run_stalled`) this process's live runs that no task executes
        any more: their end could not be stored when it happened (an app-database outage)."""
        orphans = [
            run
            for run in await self.runs.live_runs(
                states=[s.value for s in LIVE_STATES],
                on_workers=[self.worker_id],
                created_before=utcnow() - timedelta(seconds=RECOVERY_GRACE_S),
            )
            if run.id not in self._live
        ]
        for run in orphans:
            log.warning("run_orphaned", run_id=run.id)
            await self._end_abandoned(
                run,
                RunState.FAILED,
                "run_stalled",
                "The run stopped making progress and was ended.",
            )
        return len(orphans)

    async def recover_lost_runs(self) -> int:
        """End (`failed`, code `worker_lost`) the live runs of processes that stopped beating."""
        alive = await self.bus.live_workers()
        if alive is None:
            return 0
        lost = await self.runs.live_runs(
            states=[s.value for s in LIVE_STATES],
            not_on_workers=alive | {self.worker_id},
            created_before=utcnow() - timedelta(seconds=RECOVERY_GRACE_S),
        )
        for run in lost:
            log.warning("run_worker_lost", run_id=run.id, worker_id=run.worker_id)
            await self._end_abandoned(
                run, RunState.FAILED, "worker_lost", "The process running this run stopped."
            )
        return len(lost)
