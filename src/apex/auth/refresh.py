"""Opaque refresh tokens: random, stored as SHA-256, single use, rotated on every refresh."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from apex.errors import Unauthorized
from apex.store.repositories.refresh_tokens import RefreshTokenRecord, RefreshTokenRepository
from apex.store.types import utcnow

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")


@dataclass(frozen=True, slots=True)
class IssuedRefreshToken:
    token: str
    family_id: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def invalid_refresh_token(reason: str) -> Unauthorized:
    return Unauthorized(f"The refresh token {reason}; sign in again.", code="invalid_refresh_token")


class RefreshTokens:
    """A refresh family is one sign-in; each refresh spends a token and mints its successor."""

    def __init__(self, repository: RefreshTokenRepository, ttl_s: int) -> None:
        self.repository = repository
        self.ttl = timedelta(seconds=ttl_s)

    async def start(self, user_id: str) -> IssuedRefreshToken:
        token = secrets.token_urlsafe(32)
        family_id = await self.repository.start_family(
            user_id=user_id, token_hash=_hash(token), expires_at=utcnow() + self.ttl
        )
        return IssuedRefreshToken(token=token, family_id=family_id)

    async def lookup(self, token: str) -> RefreshTokenRecord:
        """The stored token, which may already be used: the caller treats that as theft."""
        if not _TOKEN_SHAPE.match(token):
            raise invalid_refresh_token("is malformed")
        record = await self.repository.find(_hash(token))
        if record is None:
            raise invalid_refresh_token("is not recognised")
        if record.family_revoked:
            raise invalid_refresh_token("has been revoked")
        if record.expires_at <= utcnow():
            raise invalid_refresh_token("has expired")
        return record

    async def rotate(self, record: RefreshTokenRecord) -> IssuedRefreshToken | None:
        """The successor token, or None when `record` was spent first (by a reuse or a race)."""
        if record.used:
            return None
        token = secrets.token_urlsafe(32)
        rotated = await self.repository.rotate(
            record, new_hash=_hash(token), new_expires_at=utcnow() + self.ttl
        )
        return IssuedRefreshToken(token=token, family_id=record.family_id) if rotated else None

    async def revoke_family(self, family_id: str, reason: str) -> None:
        await self.repository.revoke_family(family_id, reason)
