"""Accounts made directly in an app's database, with tokens its processes accept."""

from __future__ import annotations

import uuid

from fastapi import FastAPI

# the signing key every test process shares, so a token one issues the others accept
TEST_JWT_SECRET = "test-secret-" + "x" * 40


async def make_user(app: FastAPI, email: str | None = None) -> tuple[str, dict[str, str]]:
    """A real account in the app's database and a real access token for it."""
    from apex.store.repositories.users import UserRepository

    user = await UserRepository(app.state.db).create(
        email=email or f"{uuid.uuid4().hex[:12]}@example.com", password_hash=None, name=None
    )
    token = app.state.access_tokens.issue(user.id).token
    return user.id, {"Authorization": f"Bearer {token}"}
