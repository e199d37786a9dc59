"""asyncio task helpers every layer shares."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_unawaited: set[asyncio.Task[Any]] = set()


def in_background(operation: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Run `operation` on the running loop with nobody awaiting it, referenced until it ends:
    the loop keeps only a weak reference to a task, so one nobody holds can vanish mid-way."""
    task = asyncio.get_running_loop().create_task(operation)
    _unawaited.add(task)
    task.add_done_callback(_unawaited.discard)
    return task


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
