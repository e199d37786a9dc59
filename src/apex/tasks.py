"""asyncio task helpers every layer shares."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def complete_despite_cancel(operation: Awaitable[T]) -> T:
    """Finish a write that has begun even if the caller is cancelled meanwhile, then re-raise
    the cancellation: a write torn mid-flight can leave a transaction (and, on SQLite, the
    database lock) open, or leave a reader unsure whether it happened."""
    task = asyncio.ensure_future(operation)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
