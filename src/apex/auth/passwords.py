"""argon2id password hashing, off the event loop, and the password policy."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from apex.config import Settings
from apex.errors import BadRequest

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1_024


def check_password_policy(password: str) -> None:
    """Length is what makes a password hard to guess; composition rules mostly make it hard to remember."""
    if len(password) < MIN_PASSWORD_CHARS or not password.strip():
        raise BadRequest(
            f"Choose a password of at least {MIN_PASSWORD_CHARS} characters "
            "(a few unrelated words work well).",
            code="weak_password",
            details={"min_length": MIN_PASSWORD_CHARS},
        )


class Passwords:
    """Hashes and checks passwords; a sign-in for an unknown account costs the same as a wrong one.

    Hashing is deliberately slow (that is its job), so it runs in a worker thread and never stalls
    other requests. A dummy hash with the same parameters stands in for accounts that do not exist
    or have no password, so the answer time does not reveal which emails are registered.
    """

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))

    @property
    def cost(self) -> str:
        """The parameters, as a reader of a benchmark needs them."""
        p = self._hasher
        return f"argon2id t={p.time_cost} m={p.memory_cost} KiB p={p.parallelism}"

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True only for a real hash that matches; `None` still pays for one verification."""
        matched = await asyncio.to_thread(
            self._matches, password_hash or self._dummy_hash, password
        )
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the configured cost changed since this hash was made."""
        return self._hasher.check_needs_rehash(password_hash)

    def _matches(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
