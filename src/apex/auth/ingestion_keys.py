"""Ingestion keys: what the OTLP receiver accepts instead of a user's access token.

A key is `apx_` and 43 URL-safe characters from `secrets` (256 random bits). Only its SHA-256
is stored: a key that random needs no slow password hash, since no dictionary or brute force
reaches it. A key is found by its first characters (kept in clear, so the owner can tell keys
apart) and then compared in constant time. Every verification reads the database, so a deleted
key stops working at once on every server, with no cache to go stale.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from apex.errors import BadRequest, NotFound, Unauthorized
from apex.store.models import IngestionKey
from apex.store.repositories.ingestion_keys import IngestionKeyRepository
from apex.store.types import utcnow

KEY_PREFIX = "apx_"
PREFIX_CHARS = 12
MAX_KEYS_PER_USER = 50
MAX_NAME_CHARS = 200
# how often the last use of a key is written, at most
USE_RECORDED_EVERY_S = 60.0
_KEY_FORMAT = re.compile(r"apx_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: `key` is shown to its owner once and never stored."""

    record: IngestionKey
    key: str


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _refused() -> Unauthorized:
    return Unauthorized(
        "The ingestion key is missing, unknown or revoked: send "
        "`Authorization: Bearer <ingestion key>`.",
        code="invalid_ingestion_key",
    )


class IngestionKeys:
    """Create, list, delete and verify ingestion keys; every call is scoped to one owner."""

    def __init__(self, repository: IngestionKeyRepository) -> None:
        self._keys = repository
        self._recorded: dict[str, float] = {}

    async def create(self, user_id: str, name: str) -> IssuedKey:
        name = name.strip()
        if not name or len(name) > MAX_NAME_CHARS:
            raise BadRequest(
                f"name: give the key a name of 1 to {MAX_NAME_CHARS} characters.",
                code="validation_error",
            )
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = await self._keys.create(
            user_id=user_id,
            name=name,
            prefix=key[:PREFIX_CHARS],
            key_hash=key_hash(key),
            limit=MAX_KEYS_PER_USER,
        )
        return IssuedKey(record, key)

    async def list(self, user_id: str) -> list[IngestionKey]:
        return await self._keys.list(user_id)

    async def delete(self, user_id: str, key_id: str) -> None:
        if not await self._keys.delete(user_id, key_id):
            raise NotFound("No such ingestion key.", code="ingestion_key_not_found")

    async def owner(self, key: str | None) -> str:
        """The user id a presented key belongs to; 401 for anything else."""
        if key is None or not _KEY_FORMAT.fullmatch(key):
            raise _refused()
        presented = key_hash(key)
        for record in await self._keys.with_prefix(key[:PREFIX_CHARS]):
            if hmac.compare_digest(record.key_hash, presented):
                await self._record_use(record.id)
                return record.user_id
        raise _refused()

    async def _record_use(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._recorded.get(key_id, -USE_RECORDED_EVERY_S) < USE_RECORDED_EVERY_S:
            return
        if len(self._recorded) > 10 * MAX_KEYS_PER_USER:
            self._recorded.clear()
        self._recorded[key_id] = now
        moment = utcnow()
        await self._keys.mark_used(
            key_id, moment, unless_since=moment - timedelta(seconds=USE_RECORDED_EVERY_S)
        )
