"""Runs: the persisted half of the run state machine.

State changes are compare-and-set (`UPDATE … WHERE state = expected`), so when two parties race
to end a run (its own process and a recovering one, a cancel and a completion) exactly one wins.
The rules of which change is legal live in apex.execution.state; this module only stores.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from apex.store.database import Database
from apex.store.models import Message, Run, Thread
from apex.store.repositories.messages import add_message, count_messages, message_row
from apex.store.repositories.threads import no_such_thread, normalize_title
from apex.store.types import utcnow
from apex.tasks import complete_despite_cancel


@dataclass(frozen=True, slots=True)
class NewRun:
    run_id: str
    user_id: str
    thread_id: str
    text: str
    worker_id: str
    new_thread_title: str | None


class RunRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[NewRun, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def create(
        self,
        *,
        run_id: str,
        user_id: str,
        thread_id: str,
        text: str,
        worker_id: str,
        new_thread_title: str | None = None,
    ) -> None:
        """The run (pending) and the user's message, in one transaction; 404 for a foreign thread.

        With `new_thread_title`, thread `thread_id` is created in the same transaction. Runs
        asked for while an earlier creation is being written are written together, in one
        transaction (a group commit): a crowd starting runs at once waits for a few writes, not
        for one write each, before its runs can start."""
        new = NewRun(run_id, user_id, thread_id, text, worker_id, new_thread_title)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((new, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="apex-run-creations")
        await complete_despite_cancel(future)

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._create([new for new, _future in batch])
            except Exception as exc:
                if len(batch) == 1:
                    batch[0][1].set_exception(exc)
                    continue
            else:
                for _new, future in batch:
                    future.set_result(None)
                continue
            for new, future in batch:  # one bad request must not fail the others: each alone
                try:
                    await self._create([new])
                except Exception as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(None)

    async def _create(self, batch: list[NewRun]) -> None:
        """Insert the batch's rows with one statement per table (not one per object): the
        writes of a crowd's runs are what its first events wait for."""
        now = utcnow()
        new_threads = [
            (new, new.new_thread_title) for new in batch if new.new_thread_title is not None
        ]
        added_to = Counter(new.thread_id for new in batch if new.new_thread_title is None)
        async with self.db.session() as session:
            if added_to:
                rows = await session.execute(
                    select(Thread.id, Thread.user_id).where(
                        Thread.id.in_(list(added_to)), Thread.deleted_at.is_(None)
                    )
                )
                owned = {(thread_id, user_id) for thread_id, user_id in rows}
                if any(
                    (new.thread_id, new.user_id) not in owned
                    for new in batch
                    if new.new_thread_title is None
                ):
                    raise no_such_thread()
            if new_threads:
                await session.execute(
                    insert(Thread),
                    [
                        {
                            "id": new.thread_id,
                            "user_id": new.user_id,
                            "title": normalize_title(title),
                            "message_count": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for new, title in new_threads
                    ],
                )
            await count_messages(session, added_to, now)
            await session.execute(
                insert(Run),
                [
                    {
                        "id": new.run_id,
                        "user_id": new.user_id,
                        "thread_id": new.thread_id,
                        "text": new.text,
                        "state": "pending",
                        "worker_id": new.worker_id,
                        "created_at": now,
                    }
                    for new in batch
                ],
            )
            await session.execute(
                insert(Message),
                [
                    message_row(
                        thread_id=new.thread_id,
                        user_id=new.user_id,
                        role="user",
                        text=new.text,
                        run_id=new.run_id,
                        at=now,
                    )
                    for new in batch
                ],
            )
            await session.commit()

    async def get(self, user_id: str, run_id: str) -> Run | None:
        async with self.db.session() as session:
            return await session.scalar(select(Run).where(Run.id == run_id, Run.user_id == user_id))

    async def state_of(self, user_id: str, run_id: str) -> str | None:
        async with self.db.session() as session:
            return await session.scalar(
                select(Run.state).where(Run.id == run_id, Run.user_id == user_id)
            )

    async def compare_and_set(
        self,
        *,
        user_id: str,
        run_id: str,
        expected: str,
        target: str,
        values: dict[str, Any],
        reply: str | None = None,
        report: dict[str, Any] | None = None,
    ) -> bool:
        """Move `expected` → `target`; with `reply`, store the assistant message in the same commit."""
        return await complete_despite_cancel(
            self._compare_and_set(user_id, run_id, expected, target, values, reply, report)
        )

    async def _compare_and_set(
        self,
        user_id: str,
        run_id: str,
        expected: str,
        target: str,
        values: dict[str, Any],
        reply: str | None,
        report: dict[str, Any] | None,
    ) -> bool:
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
                await add_message(
                    session,
                    thread_id=thread_id,
                    user_id=user_id,
                    role="assistant",
                    text=reply,
                    run_id=run_id,
                    report=report,
                )
            await session.commit()
            return True

    async def live_runs(
        self,
        *,
        states: Collection[str],
        created_before: datetime,
        not_on_workers: Collection[str] = (),
        on_workers: Collection[str] | None = None,
    ) -> list[Run]:
        """Live runs whose worker is not among `not_on_workers` (or is among `on_workers`),
        across users.

        The one cross-user query: recovering runs whose process died is a system duty that no
        single user's request performs.
        """
        query = select(Run).where(Run.state.in_(list(states)), Run.created_at < created_before)
        if not_on_workers:
            query = query.where(Run.worker_id.not_in(list(not_on_workers)))
        if on_workers is not None:
            query = query.where(Run.worker_id.in_(list(on_workers)))
        async with self.db.session() as session:
            return list((await session.scalars(query.order_by(Run.created_at))).all())

    async def record_seq(self, run_id: str, last_seq: int) -> None:
        """Raise the run's durable high-water mark to `last_seq` (never lowers it): the run's
        numbering outlives a bus that lost it and the process that kept it."""
        async with self.db.session() as session:
            await session.execute(
                update(Run)
                .where(Run.id == run_id, Run.last_seq < last_seq)
                .values(last_seq=last_seq)
            )
            await session.commit()

    async def record_final(self, run_id: str, last_seq: int, final_event: str) -> None:
        """Keep the run's final event and its `seq` with the run (never lowers `last_seq`)."""
        await complete_despite_cancel(self._record_final(run_id, last_seq, final_event))

    async def _record_final(self, run_id: str, last_seq: int, final_event: str) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(Run)
                .where(Run.id == run_id, Run.last_seq <= last_seq)
                .values(last_seq=last_seq, final_event=final_event)
            )
            await session.commit()
