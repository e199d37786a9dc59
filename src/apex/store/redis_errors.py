"""Redis failures on a request path become a clear 503, never a stack trace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import RedisError

from apex.errors import DependencyUnavailable


@contextmanager
def redis_required(action: str) -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise DependencyUnavailable("redis", action) from exc
