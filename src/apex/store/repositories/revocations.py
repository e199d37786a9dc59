"""The record of revoked credentials: what every process's in-memory denylist is rebuilt from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from apex.store.database import Database
from apex.store.models import Revocation
from apex.store.types import utcnow

ROWS_PER_INSERT = 1_000  # SQLite caps the parameters of one statement


@dataclass(frozen=True, slots=True)
class RevokedId:
    id: str
    until: float  # Unix time after which the entry no longer matters
    revoked_at: datetime


class RevocationRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    async def record(self, ids: Sequence[str], until: float) -> datetime:
        """Deny `ids` until `until` (an earlier `until` never shortens an entry); returns when."""
        now = utcnow()
        expires_at = datetime.fromtimestamp(until, UTC)
        async with self.db.session() as session:
            for first in range(0, len(ids), ROWS_PER_INSERT):
                rows = [
                    {"id": revoked, "expires_at": expires_at, "revoked_at": now}
                    for revoked in ids[first : first + ROWS_PER_INSERT]
                ]
                statement = self._insert(Revocation).values(rows)
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[Revocation.id],
                        set_={
                            "expires_at": statement.excluded.expires_at,
                            "revoked_at": statement.excluded.revoked_at,
                        },
                        where=Revocation.expires_at < statement.excluded.expires_at,
                    )
                )
            await session.commit()
        return now

    async def live_since(self, moment: datetime | None) -> list[RevokedId]:
        """Entries still in force, recorded at or after `moment` (all of them when None)."""
        query = select(Revocation.id, Revocation.expires_at, Revocation.revoked_at).where(
            Revocation.expires_at > utcnow()
        )
        if moment is not None:
            query = query.where(Revocation.revoked_at >= moment)
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        return [RevokedId(row.id, row.expires_at.timestamp(), row.revoked_at) for row in rows]

    async def prune(self) -> None:
        """Forget entries that can no longer deny anything."""
        async with self.db.session() as session:
            await session.execute(delete(Revocation).where(Revocation.expires_at <= utcnow()))
            await session.commit()
