"""Refresh tokens and their families. Only hashes are stored; rotation is one conditional UPDATE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update

from apex.store.database import Database
from apex.store.models import RefreshFamily, RefreshToken
from apex.store.types import utcnow


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    id: str
    family_id: str
    user_id: str
    expires_at: datetime
    used: bool
    family_revoked: bool


class RefreshTokenRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def start_family(self, *, user_id: str, token_hash: str, expires_at: datetime) -> str:
        """A new sign-in: a family and its first token, in one transaction. Returns the family id."""
        async with self.db.session() as session:
            family = RefreshFamily(user_id=user_id)
            session.add(family)
            await session.flush()
            session.add(
                RefreshToken(
                    family_id=family.id,
                    user_id=user_id,
                    token_hash=token_hash,
                    expires_at=expires_at,
                )
            )
            await session.commit()
            return family.id

    async def find(self, token_hash: str) -> RefreshTokenRecord | None:
        async with self.db.session() as session:
            row = (
                await session.execute(
                    select(RefreshToken, RefreshFamily.revoked_at)
                    .join(RefreshFamily, RefreshFamily.id == RefreshToken.family_id)
                    .where(RefreshToken.token_hash == token_hash)
                )
            ).first()
        if row is None:
            return None
        token, revoked_at = row
        return RefreshTokenRecord(
            id=token.id,
            family_id=token.family_id,
            user_id=token.user_id,
            expires_at=token.expires_at,
            used=token.used_at is not None,
            family_revoked=revoked_at is not None,
        )

    async def rotate(
        self, record: RefreshTokenRecord, *, new_hash: str, new_expires_at: datetime
    ) -> bool:
        """Mark `record` used and add its successor, atomically; False if it was already used.

        The WHERE clause is the arbiter: of two concurrent rotations of one token, the database
        lets exactly one UPDATE match, on SQLite and PostgreSQL alike.
        """
        family_live = exists().where(
            RefreshFamily.id == record.family_id, RefreshFamily.revoked_at.is_(None)
        )
        async with self.db.session() as session:
            consumed = await session.execute(
                update(RefreshToken)
                .where(RefreshToken.id == record.id, RefreshToken.used_at.is_(None), family_live)
                .values(used_at=utcnow())
            )
            if consumed.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return False
            session.add(
                RefreshToken(
                    family_id=record.family_id,
                    user_id=record.user_id,
                    token_hash=new_hash,
                    expires_at=new_expires_at,
                )
            )
            await session.commit()
            return True

    async def revoke_family(self, family_id: str, reason: str) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(RefreshFamily)
                .where(RefreshFamily.id == family_id, RefreshFamily.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_reason=reason[:64])
            )
            await session.commit()
