"""What every repository of a user's own rows does alike: find one row of its owner (another
user's is not found: 404, no existence leak), refuse a row beyond a per-user limit, and list,
get and delete them."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from apex.errors import Conflict, NotFound
from apex.store.database import Database

RowT = TypeVar("RowT")


async def owned_row(
    session: AsyncSession, model: type[RowT], user_id: str, row_id: str, *, noun: str
) -> RowT:
    table: Any = model
    row = await session.scalar(select(model).where(table.id == row_id, table.user_id == user_id))
    if row is None:
        raise NotFound(f"No such {noun}.", code=f"{noun}_not_found")
    return row


async def ensure_room(
    session: AsyncSession, model: type[Any], user_id: str, limit: int, *, noun: str
) -> None:
    """409 when the user already has `limit` rows of `model`."""
    count = await session.scalar(
        select(func.count()).select_from(model).where(model.user_id == user_id)
    )
    if (count or 0) >= limit:
        raise Conflict(
            f"An account has at most {limit} {noun}s; delete one first.", code=f"too_many_{noun}s"
        )


class OwnedRows(Generic[RowT]):
    """A user's rows of one table, oldest first, at most `limit` of them."""

    model: type[RowT]
    noun: str
    limit: int

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _add(self, user_id: str, row: RowT) -> RowT:
        async with self.db.session() as session:
            await ensure_room(session, self.model, user_id, self.limit, noun=self.noun)
            session.add(row)
            await session.commit()
            return row

    async def list(self, user_id: str) -> list[RowT]:
        table: Any = self.model
        async with self.db.session() as session:
            rows = await session.scalars(
                select(self.model)
                .where(table.user_id == user_id)
                .order_by(table.created_at, table.id)
            )
            return list(rows.all())

    async def get(self, user_id: str, row_id: str) -> RowT:
        async with self.db.session() as session:
            return await owned_row(session, self.model, user_id, row_id, noun=self.noun)

    async def delete(self, user_id: str, row_id: str) -> None:
        async with self.db.session() as session:
            await session.delete(
                await owned_row(session, self.model, user_id, row_id, noun=self.noun)
            )
            await session.commit()
