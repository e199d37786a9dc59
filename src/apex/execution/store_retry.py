"""Run state writes that outlive an app-database outage.

A run's state changes and its final event's record must land, or the run stays `running` with
no final event. A write that fails because the database is unreachable is retried with backoff
until it lands or `give_up_after_s` passes; any other failure is raised at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from apex.config.logging import get_logger
from apex.store.database import is_unreachable

log = get_logger(__name__)
T = TypeVar("T")

FIRST_DELAY_S = 0.1
MAX_DELAY_S = 2.0


async def retry_store(
    operation: Callable[[], Awaitable[T]], *, what: str, give_up_after_s: float
) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after_s
    delay = FIRST_DELAY_S
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not is_unreachable(exc) or loop.time() + delay > deadline:
                raise
            log.warning("store_write_retrying", what=what, error=repr(exc))
        await asyncio.sleep(delay)
        delay = min(MAX_DELAY_S, delay * 2)
