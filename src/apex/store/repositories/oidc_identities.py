"""Links between an OIDC provider's subject and an Apex account."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from apex.errors import Conflict
from apex.store.database import Database
from apex.store.models import OidcIdentity


class OidcIdentityRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def find_user_id(self, provider: str, subject: str) -> str | None:
        async with self.db.session() as session:
            return await session.scalar(
                select(OidcIdentity.user_id).where(
                    OidcIdentity.provider == provider, OidcIdentity.subject == subject
                )
            )

    async def link(self, *, user_id: str, provider: str, subject: str, email: str | None) -> str:
        """Link and return the owning user id; when a concurrent sign-in linked first, its user wins."""
        async with self.db.session() as session:
            session.add(
                OidcIdentity(user_id=user_id, provider=provider, subject=subject, email=email)
            )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
            else:
                return user_id
        owner = await self.find_user_id(provider, subject)
        if owner is None:
            raise Conflict("The account changed during sign-in; please sign in again.")
        return owner
