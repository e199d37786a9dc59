"""Rate limits as a generic cell rate algorithm (GCRA): `limit` requests per period, no burst beyond.

Each key keeps one number, its theoretical arrival time (TAT). A request is allowed when the TAT,
pushed forward by one interval, stays within one period of now. The same arithmetic runs in
process or, when Redis is configured, as one atomic Lua script on Redis's clock, so the limit
holds across every process.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from apex.errors import RateLimited
from apex.shared_redis.errors import redis_required

if TYPE_CHECKING:
    import redis.asyncio as aioredis

PERIOD_S = 60.0


class RateLimiter(Protocol):
    async def acquire(self, key: str, limit: int, period_s: float) -> float:
        """0.0 when allowed (and counted); otherwise the seconds to wait, and nothing is counted."""

    async def close(self) -> None: ...


def gcra(tat: float | None, now: float, limit: int, period_s: float) -> tuple[float, float]:
    """(wait_s, new_tat): wait_s is 0.0 when the request is allowed, and only then is new_tat kept."""
    new_tat = max(tat if tat is not None else now, now) + period_s / limit
    return max(0.0, new_tat - period_s - now), new_tat


class LocalRateLimiter:
    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._next_prune = time.monotonic() + PERIOD_S

    async def acquire(self, key: str, limit: int, period_s: float) -> float:
        now = time.monotonic()
        if now >= self._next_prune:
            self._tat = {k: v for k, v in self._tat.items() if v > now}
            self._next_prune = now + PERIOD_S
        wait, new_tat = gcra(self._tat.get(key), now, limit, period_s)
        if wait == 0.0:
            self._tat[key] = new_tat
        return wait

    async def close(self) -> None:
        self._tat.clear()


_GCRA_LUA = """
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then tat = math.max(tonumber(stored), now) end
local new_tat = tat + interval
local wait = new_tat - period - now
if wait > 0 then return tostring(wait) end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000))
return '0'
"""


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._script = client.register_script(_GCRA_LUA)
        self._prefix = f"{prefix}:auth:rate:"

    async def acquire(self, key: str, limit: int, period_s: float) -> float:
        with redis_required("Checking the rate limit"):
            wait = await self._script(keys=[self._prefix + key], args=[period_s / limit, period_s])
        return float(wait)

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    """A named limit per minute, applied to each subject (an IP, an account) separately."""

    name: str
    per_minute: int


class RateLimits:
    """Applies rules to subjects and turns a refusal into 429 with `Retry-After`."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def check(self, rule: RateLimitRule, **subjects: str) -> None:
        """Every subject (e.g. `ip=...`, `account=...`) is counted against the rule."""
        for kind, subject in subjects.items():
            digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:32]
            wait = await self.limiter.acquire(
                f"{rule.name}:{kind}:{digest}", rule.per_minute, PERIOD_S
            )
            if wait > 0:
                raise RateLimited(
                    f"Too many {rule.name} attempts; try again in {math.ceil(wait)} s.",
                    retry_after_s=max(1, math.ceil(wait)),
                    code="rate_limited",
                )
