"""The asyncio Redis client every Redis-backed service opens from APEX_REDIS_URL.

Redis comes with the `redis` extra, so its client library is imported here, when a client is
first wanted, which only happens where Redis is configured: the embedded default never loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio as aioredis


def redis_client(url: str) -> aioredis.Redis:
    """A client for `url` (connections open on first use)."""
    import redis.asyncio as aioredis

    return aioredis.from_url(url)
