"""Messages of a thread: what the user asked and what each run answered, oldest first."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from apex.ids import new_id
from apex.store.database import Database
from apex.store.models import Message, Thread
from apex.store.pagination import Page, decode_cursor, encode_cursor
from apex.store.repositories.threads import owned_thread
from apex.store.types import utcnow


def message_row(
    *,
    thread_id: str,
    user_id: str,
    role: str,
    text: str,
    run_id: str | None,
    at: datetime,
    report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A message's row for an INSERT; `count_messages` then accounts for it on its thread."""
    return {
        "id": new_id(),
        "thread_id": thread_id,
        "user_id": user_id,
        "role": role,
        "text": text,
        "run_id": run_id,
        "report": report,
        "created_at": at,
    }


async def count_messages(session: AsyncSession, added: Mapping[str, int], at: datetime) -> None:
    """Account for messages added to existing threads (same transaction): each count grows in
    the database, not from a value read before, so two runs ending on one thread at once both
    count; and the thread moves to the top of its list."""
    for thread_id, count in added.items():
        await session.execute(
            update(Thread)
            .where(Thread.id == thread_id)
            .values(message_count=Thread.message_count + count, updated_at=at)
        )


async def add_message(
    session: AsyncSession,
    *,
    thread_id: str,
    user_id: str,
    role: str,
    text: str,
    run_id: str | None,
    report: dict[str, Any] | None = None,
) -> None:
    """Add one message to an existing thread and account for it (same transaction)."""
    now = utcnow()
    await session.execute(
        insert(Message).values(
            message_row(
                thread_id=thread_id,
                user_id=user_id,
                role=role,
                text=text,
                run_id=run_id,
                at=now,
                report=report,
            )
        )
    )
    await count_messages(session, {thread_id: 1}, now)


class MessageRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self, user_id: str, thread_id: str, *, limit: int, cursor: str | None = None
    ) -> Page[Message]:
        """Chronological pages; 404 for a thread that is not the caller's."""
        query = select(Message).where(Message.thread_id == thread_id, Message.user_id == user_id)
        if cursor:
            moment, row_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    Message.created_at > moment,
                    and_(Message.created_at == moment, Message.id > row_id),
                )
            )
        query = query.order_by(Message.created_at, Message.id).limit(limit + 1)
        async with self.db.session() as session:
            await owned_thread(session, user_id, thread_id)
            rows = list((await session.scalars(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more else None
        return Page(rows, next_cursor)

    async def history(
        self, user_id: str, thread_id: str, *, excluding_run: str, limit: int
    ) -> builtins.list[Message]:
        """The latest `limit` messages before a run, oldest first: what a workflow reads."""
        query = (
            select(Message)
            .where(
                Message.thread_id == thread_id,
                Message.user_id == user_id,
                or_(Message.run_id.is_(None), Message.run_id != excluding_run),
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
        async with self.db.session() as session:
            rows = list((await session.scalars(query)).all())
        rows.reverse()
        return rows
