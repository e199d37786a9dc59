"""Redis failures on a request path become a clear 503, never a stack trace.

Redis comes with the `redis` extra. Code that catches its errors imports them from here: without
the extra (and so without APEX_REDIS_URL, see `apex.config.extras`) they are stand-ins that
nothing raises, so the embedded default imports no Redis client at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from apex.errors import DependencyUnavailable

if TYPE_CHECKING:
    from redis.exceptions import LockError, RedisError
else:
    try:
        from redis.exceptions import LockError, RedisError
    except ImportError:

        class RedisError(Exception):
            """Stands for redis's errors where the redis extra is not installed: never raised."""

        class LockError(RedisError):
            """Stands for redis's lock error where the redis extra is not installed."""


__all__ = ["LockError", "RedisError", "redis_required"]


@contextmanager
def redis_required(action: str) -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise DependencyUnavailable("redis", action) from exc
