"""The rate-limit arithmetic (GCRA) and the in-process limiter."""

import pytest

from apex.auth.ratelimit import LocalRateLimiter, RateLimitRule, RateLimits, gcra
from apex.errors import RateLimited


def test_gcra_allows_the_limit_then_spaces_requests() -> None:
    tat = None
    for _ in range(3):
        wait, tat = gcra(tat, 1000.0, 3, 60.0)
        assert wait == 0.0
    wait, _ = gcra(tat, 1000.0, 3, 60.0)
    assert wait == pytest.approx(20.0)
    assert gcra(tat, 1019.9, 3, 60.0)[0] == pytest.approx(0.1)
    assert gcra(tat, 1020.0, 3, 60.0)[0] == 0.0
    assert gcra(tat, 1060.0, 3, 60.0) == (0.0, 1080.0)


async def test_local_limiter_counts_each_key_separately() -> None:
    limiter = LocalRateLimiter()
    assert [await limiter.acquire("a", 2, 60.0) for _ in range(2)] == [0.0, 0.0]
    assert await limiter.acquire("a", 2, 60.0) == pytest.approx(30.0, abs=0.5)
    assert await limiter.acquire("b", 2, 60.0) == 0.0
    # refusals are not counted: the wait does not grow with hammering
    assert await limiter.acquire("a", 2, 60.0) == pytest.approx(30.0, abs=0.5)


async def test_rate_limits_raise_429_with_retry_after_per_subject() -> None:
    limits = RateLimits(LocalRateLimiter())
    rule = RateLimitRule("login", per_minute=2)
    await limits.check(rule, ip="10.0.0.1", account="ann@example.com")
    await limits.check(rule, ip="10.0.0.2", account="ann@example.com")
    with pytest.raises(RateLimited) as caught:
        await limits.check(rule, ip="10.0.0.3", account="ann@example.com")
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after_s == 30
    assert caught.value.details == {"retry_after_s": 30}
    await limits.check(rule, ip="10.0.0.3", account="bob@example.com")
