"""Ingestion keys: created, listed and deleted by their owner, found by prefix to verify."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import delete, or_, select, update

from apex.store.database import Database
from apex.store.models import IngestionKey
from apex.store.repositories.owned import ensure_room


class IngestionKeyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, *, user_id: str, name: str, prefix: str, key_hash: str, limit: int
    ) -> IngestionKey:
        """409 when the user has `limit` keys already."""
        async with self.db.session() as session:
            await ensure_room(session, IngestionKey, user_id, limit, noun="key")
            key = IngestionKey(user_id=user_id, name=name, prefix=prefix, key_hash=key_hash)
            session.add(key)
            await session.commit()
            return key

    async def list(self, user_id: str) -> list[IngestionKey]:
        """The owner's keys, newest first."""
        async with self.db.session() as session:
            rows = await session.scalars(
                select(IngestionKey)
                .where(IngestionKey.user_id == user_id)
                .order_by(IngestionKey.created_at.desc(), IngestionKey.id.desc())
            )
            return list(rows)

    async def delete(self, user_id: str, key_id: str) -> bool:
        """False when no key of this owner has that id (someone else's included)."""
        async with self.db.session() as session:
            result = await session.execute(
                delete(IngestionKey).where(
                    IngestionKey.id == key_id, IngestionKey.user_id == user_id
                )
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def with_prefix(self, prefix: str) -> builtins.list[IngestionKey]:
        async with self.db.session() as session:
            return list(
                await session.scalars(select(IngestionKey).where(IngestionKey.prefix == prefix))
            )

    async def mark_used(self, key_id: str, at: datetime, *, unless_since: datetime) -> None:
        """Record a use, unless one at or after `unless_since` is recorded already: a key that
        exports many times a second costs one write a minute, not one per export."""
        async with self.db.session() as session:
            await session.execute(
                update(IngestionKey)
                .where(
                    IngestionKey.id == key_id,
                    or_(
                        IngestionKey.last_used_at.is_(None),
                        IngestionKey.last_used_at < unless_since,
                    ),
                )
                .values(last_used_at=at)
            )
            await session.commit()
