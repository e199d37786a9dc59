"""Accounts. Emails are stored normalized, so lookups are exact."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from apex.errors import Conflict
from apex.store.database import Database
from apex.store.models import RefreshFamily, Run, User


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, email: str, password_hash: str | None, name: str | None) -> User:
        async with self.db.session() as session:
            user = User(email=email, password_hash=password_hash, name=name)
            session.add(user)
            try:
                await session.commit()
            except IntegrityError:
                raise Conflict(
                    "An account with this email already exists.", code="email_taken"
                ) from None
            return user

    async def get(self, user_id: str) -> User | None:
        async with self.db.session() as session:
            return await session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        async with self.db.session() as session:
            return await session.scalar(select(User).where(User.email == email))

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self.db.session() as session:
            await session.execute(
                update(User).where(User.id == user_id).values(password_hash=password_hash)
            )
            await session.commit()

    async def set_disabled(self, user_id: str, disabled_at: datetime | None) -> None:
        """Disable the account from `disabled_at`, or enable it again (None)."""
        async with self.db.session() as session:
            await session.execute(
                update(User).where(User.id == user_id).values(disabled_at=disabled_at)
            )
            await session.commit()

    async def live_sign_in_ids(self, user_id: str) -> list[str]:
        """The account's sign-ins (refresh families) not yet revoked."""
        async with self.db.session() as session:
            return list(
                (
                    await session.scalars(
                        select(RefreshFamily.id).where(
                            RefreshFamily.user_id == user_id, RefreshFamily.revoked_at.is_(None)
                        )
                    )
                ).all()
            )

    async def run_ids_in(self, user_id: str, states: Collection[str]) -> list[str]:
        """The account's runs in one of `states` (its live runs, before the account goes)."""
        async with self.db.session() as session:
            return list(
                (
                    await session.scalars(
                        select(Run.id).where(Run.user_id == user_id, Run.state.in_(list(states)))
                    )
                ).all()
            )

    async def delete(self, user_id: str) -> bool:
        """The account and, by cascade in the same transaction, everything of it in this store
        (threads, messages, runs, refresh tokens, linked identities). False if it was gone."""
        async with self.db.session() as session:
            deleted = await session.execute(delete(User).where(User.id == user_id))
            await session.commit()
        return bool(deleted.rowcount)  # type: ignore[attr-defined]
