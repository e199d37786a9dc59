"""Runs: the persisted half of the run state machine.

State changes are compare-and-set (`UPDATE … WHERE state = expected`), so when two parties race
to end a run (its own process and a recovering one, a cancel and a completion) exactly one wins.
The rules of which change is legal live in apex.execution.state; this module only stores.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from apex.store.database import Database, complete_despite_cancel
from apex.store.models import Run, Thread
from apex.store.repositories.messages import stage_message
from apex.store.repositories.threads import owned_thread


class RunRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, run_id: str, user_id: str, thread_id: str, text: str,
                     worker_id: str) -> Run:
        """The run (pending) and the user's message, in one transaction; 404 for a foreign thread."""
        return await complete_despite_cancel(
            self._create(run_id, user_id, thread_id, text, worker_id))

    async def _create(self, run_id: str, user_id: str, thread_id: str, text: str,
                      worker_id: str) -> Run:
        async with self.db.session() as session:
            thread = await owned_thread(session, user_id, thread_id)
            run = Run(id=run_id, user_id=user_id, thread_id=thread.id, text=text,
                      state="pending", worker_id=worker_id)
            session.add(run)
            stage_message(session, thread, role="user", text=text, run_id=run_id)
            await session.commit()
            return run

    async def get(self, user_id: str, run_id: str) -> Run | None:
        async with self.db.session() as session:
            return await session.scalar(
                select(Run).where(Run.id == run_id, Run.user_id == user_id)
            )

    async def state_of(self, user_id: str, run_id: str) -> str | None:
        async with self.db.session() as session:
            return await session.scalar(
                select(Run.state).where(Run.id == run_id, Run.user_id == user_id)
            )

    async def compare_and_set(self, *, user_id: str, run_id: str, expected: str, target: str,
                              values: dict[str, Any], reply: str | None = None,
                              report: dict[str, Any] | None = None) -> bool:
        """Move `expected` → `target`; with `reply`, store the assistant message in the same commit."""
        return await complete_despite_cancel(
            self._compare_and_set(user_id, run_id, expected, target, values, reply, report))

    async def _compare_and_set(self, user_id: str, run_id: str, expected: str, target: str,
                               values: dict[str, Any], reply: str | None,
                               report: dict[str, Any] | None) -> bool:
        async with self.db.session() as session:
            result = await session.execute(
                update(Run)
                .where(Run.id == run_id, Run.user_id == user_id, Run.state == expected)
                .values(state=target, **values)
                .returning(Run.thread_id)
            )
            thread_id = result.scalar_one_or_none()
            if thread_id is None:
                await session.rollback()
                return False
            if reply is not None:
                thread = await session.get(Thread, thread_id)
                assert thread is not None, "runs reference their thread"
                stage_message(session, thread, role="assistant", text=reply, run_id=run_id,
                              report=report)
            await session.commit()
            return True

    async def live_runs(self, *, states: Collection[str], not_on_workers: Collection[str],
                        created_before: datetime) -> list[Run]:
        """Live runs whose worker is not among `not_on_workers`, across users.

        The one cross-user query: recovering runs whose process died is a system duty that no
        single user's request performs.
        """
        query = select(Run).where(Run.state.in_(list(states)), Run.created_at < created_before)
        if not_on_workers:
            query = query.where(Run.worker_id.not_in(list(not_on_workers)))
        async with self.db.session() as session:
            return list((await session.scalars(query.order_by(Run.created_at))).all())
