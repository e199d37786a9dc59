"""Chat threads. Every query is scoped by the owner; a deleted or foreign thread is not found."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from apex.errors import BadRequest, NotFound
from apex.store.database import Database
from apex.store.models import Thread
from apex.store.pagination import Page, decode_cursor, encode_cursor
from apex.store.types import utcnow

TITLE_MAX_CHARS = 200
DEFAULT_TITLE = "New chat"


def normalize_title(title: str) -> str:
    """One line of at most 200 characters; an empty title is refused."""
    cleaned = " ".join(title.split())[:TITLE_MAX_CHARS]
    if not cleaned:
        raise BadRequest("The title must not be empty.", code="invalid_title")
    return cleaned


def title_from_text(text: str) -> str:
    """A thread created by its first message is named after it."""
    line = " ".join(text.split())
    return line[:80] if line else DEFAULT_TITLE


async def owned_thread(session: AsyncSession, user_id: str, thread_id: str) -> Thread:
    """The caller's live thread, or 404 (the same answer for a foreign one: no existence leak)."""
    thread = await session.scalar(
        select(Thread).where(
            Thread.id == thread_id, Thread.user_id == user_id, Thread.deleted_at.is_(None)
        )
    )
    if thread is None:
        raise no_such_thread()
    return thread


def no_such_thread() -> NotFound:
    """Missing and foreign threads get the same answer: a thread id never reveals that it exists."""
    return NotFound("No such thread.", code="thread_not_found")


class ThreadRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, user_id: str, title: str | None = None) -> Thread:
        async with self.db.session() as session:
            thread = Thread(
                user_id=user_id,
                title=normalize_title(title) if title is not None else DEFAULT_TITLE,
            )
            session.add(thread)
            await session.commit()
            return thread

    async def get(self, user_id: str, thread_id: str) -> Thread:
        async with self.db.session() as session:
            return await owned_thread(session, user_id, thread_id)

    async def list(self, user_id: str, *, limit: int, cursor: str | None = None) -> Page[Thread]:
        """Newest activity first."""
        query = select(Thread).where(Thread.user_id == user_id, Thread.deleted_at.is_(None))
        if cursor:
            moment, row_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    Thread.updated_at < moment,
                    and_(Thread.updated_at == moment, Thread.id < row_id),
                )
            )
        query = query.order_by(Thread.updated_at.desc(), Thread.id.desc()).limit(limit + 1)
        async with self.db.session() as session:
            rows = list((await session.scalars(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].updated_at, rows[-1].id) if more else None
        return Page(rows, next_cursor)

    async def rename(self, user_id: str, thread_id: str, title: str) -> Thread:
        async with self.db.session() as session:
            thread = await owned_thread(session, user_id, thread_id)
            thread.title = normalize_title(title)
            thread.updated_at = utcnow()
            await session.commit()
            return thread

    async def delete(self, user_id: str, thread_id: str) -> None:
        """Soft delete: the rows stay (runs may still reference them) but the thread is gone."""
        async with self.db.session() as session:
            thread = await owned_thread(session, user_id, thread_id)
            thread.deleted_at = utcnow()
            await session.commit()
