"""Retry policy, circuit breaker and guard, driven by a fake clock and a recording sleep."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from apex.errors import ServiceUnavailable
from apex.llm.errors import LanguageModelError, LlmFailureReason
from apex.llm.provider import retry_after_s, status_error
from apex.llm.resilience import CircuitBreaker, CircuitState, ProviderGuard, ProviderRetryPolicy
from tests.support.llm_stubs import FakeClock, RecordingSleep


def failing(*errors: LanguageModelError, then: str = "ok") -> Callable[[], Awaitable[str]]:
    queue = list(errors)

    async def request() -> str:
        if queue:
            raise queue.pop(0)
        return then

    return request


def rate_limited(after: float | None) -> LanguageModelError:
    return LanguageModelError(
        "429", reason=LlmFailureReason.RATE_LIMITED, retryable=True, provider_retry_after_s=after
    )


def server_error() -> LanguageModelError:
    return LanguageModelError("503", reason=LlmFailureReason.SERVER_ERROR, retryable=True)


def test_backoff_grows_exponentially_with_jitter() -> None:
    policy = ProviderRetryPolicy(max_attempts=6, base_delay_s=0.5, max_delay_s=4.0)
    rng = random.Random(7)
    for failed, step in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0)):
        delays = {policy.delay_s(failed, None, rng) for _ in range(50)}
        assert all(step / 2 <= delay <= step for delay in delays)  # type: ignore[operator]
        assert len(delays) > 1
    assert policy.delay_s(6, None, rng) is None


def test_retry_after_is_honoured_and_never_undercut() -> None:
    policy = ProviderRetryPolicy(max_retry_after_s=10)
    rng = random.Random(1)
    for _ in range(50):
        delay = policy.delay_s(1, 3.0, rng)
        assert delay is not None and 3.0 <= delay <= 4.0
    assert policy.delay_s(1, 11.0, rng) is None


def test_retry_after_headers() -> None:
    assert retry_after_s({"retry-after": "2"}) == 2.0
    assert retry_after_s({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    future = datetime.now(UTC) + timedelta(seconds=30)
    parsed = retry_after_s({"retry-after": format_datetime(future, usegmt=True)})
    assert parsed is not None and 25 <= parsed <= 30
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({}) is None


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (429, LlmFailureReason.RATE_LIMITED, True),
        (500, LlmFailureReason.SERVER_ERROR, True),
        (503, LlmFailureReason.SERVER_ERROR, True),
        (529, LlmFailureReason.SERVER_ERROR, True),
        (408, LlmFailureReason.TIMEOUT, True),
        (401, LlmFailureReason.REJECTED, False),
        (400, LlmFailureReason.REJECTED, False),
        (404, LlmFailureReason.REJECTED, False),
    ],
)
def test_status_codes(status: int, reason: LlmFailureReason, retryable: bool) -> None:
    error = status_error("openai", status, {"retry-after": "1"})
    assert (error.reason, error.retryable, error.provider_status) == (reason, retryable, status)
    # what Apex answers its own client: 503 and its own whole-second Retry-After
    assert (error.status, error.retry_after_s) == (503, ServiceUnavailable.retry_after_s)


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=30, clock=clock)
    breaker.acquire()
    breaker.failed()
    assert breaker.state is CircuitState.CLOSED
    breaker.acquire()
    breaker.failed()
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(LanguageModelError) as caught:
        breaker.acquire()
    assert caught.value.reason is LlmFailureReason.CIRCUIT_OPEN
    clock.now += 30
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.acquire()
    with pytest.raises(LanguageModelError):
        breaker.acquire()
    breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED
    breaker.acquire()


def test_a_failed_probe_reopens_for_a_full_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10, clock=clock)
    breaker.failed()
    clock.now += 10
    breaker.acquire()
    breaker.failed()
    assert breaker.state is CircuitState.OPEN
    clock.now += 9
    with pytest.raises(LanguageModelError):
        breaker.acquire()
    clock.now += 1
    breaker.acquire()


def test_a_cancelled_probe_lets_another_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=5, clock=clock)
    breaker.failed()
    clock.now += 5
    breaker.acquire()
    breaker.abandoned()
    breaker.acquire()


async def test_guard_retries_429_after_retry_after_then_succeeds() -> None:
    sleep = RecordingSleep()
    guard = ProviderGuard(timeout_s=5, sleep=sleep, rng=random.Random(3))
    assert await guard.call(failing(rate_limited(2.0), server_error())) == "ok"
    assert len(sleep.delays) == 2
    assert 2.0 <= sleep.delays[0] <= 3.0
    assert 0.25 <= sleep.delays[1] <= 1.0
    assert guard.breaker.state is CircuitState.CLOSED


async def test_guard_gives_up_after_max_attempts_and_counts_requests() -> None:
    sleep = RecordingSleep()
    guard = ProviderGuard(timeout_s=5, sleep=sleep, retry=ProviderRetryPolicy(max_attempts=3))
    with pytest.raises(LanguageModelError) as caught:
        await guard.call(failing(server_error(), server_error(), server_error()))
    assert caught.value.reason is LlmFailureReason.SERVER_ERROR
    assert caught.value.usage.requests == 3
    assert len(sleep.delays) == 2


async def test_guard_does_not_retry_a_rejection_or_a_long_retry_after() -> None:
    sleep = RecordingSleep()
    guard = ProviderGuard(timeout_s=5, sleep=sleep)
    rejected = LanguageModelError("401", reason=LlmFailureReason.REJECTED)
    with pytest.raises(LanguageModelError):
        await guard.call(failing(rejected))
    with pytest.raises(LanguageModelError) as caught:
        await guard.call(failing(rate_limited(120.0)))
    assert caught.value.reason is LlmFailureReason.RATE_LIMITED
    assert sleep.delays == []


async def test_guard_times_out_each_attempt() -> None:
    sleep = RecordingSleep()
    guard = ProviderGuard(timeout_s=0.05, sleep=sleep, retry=ProviderRetryPolicy(max_attempts=2))

    async def hang() -> str:
        await asyncio.sleep(10)
        return "never"

    with pytest.raises(LanguageModelError) as caught:
        await guard.call(hang)
    assert caught.value.reason is LlmFailureReason.TIMEOUT
    assert caught.value.usage.requests == 2


async def test_open_guard_fails_fast_without_calling() -> None:
    calls = 0

    async def request() -> str:
        nonlocal calls
        calls += 1
        raise server_error()

    guard = ProviderGuard(
        timeout_s=5,
        sleep=RecordingSleep(),
        retry=ProviderRetryPolicy(max_attempts=1),
        breaker=CircuitBreaker(failure_threshold=2, clock=FakeClock()),
    )
    for _ in range(2):
        with pytest.raises(LanguageModelError):
            await guard.call(request)
    with pytest.raises(LanguageModelError) as caught:
        await guard.call(request)
    assert caught.value.reason is LlmFailureReason.CIRCUIT_OPEN
    assert calls == 2


async def test_an_unexpected_exception_counts_against_the_breaker() -> None:
    guard = ProviderGuard(timeout_s=5, breaker=CircuitBreaker(failure_threshold=1))

    async def broken() -> str:
        raise KeyError("malformed")

    with pytest.raises(KeyError):
        await guard.call(broken)
    assert guard.breaker.state is CircuitState.OPEN


async def test_cancellation_propagates_and_frees_the_probe() -> None:
    clock = FakeClock()
    guard = ProviderGuard(
        timeout_s=5, breaker=CircuitBreaker(failure_threshold=1, reset_timeout_s=1, clock=clock)
    )
    guard.breaker.failed()
    clock.now += 1
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(10)
        return "never"

    task = asyncio.create_task(guard.call(slow))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert guard.breaker.state is CircuitState.HALF_OPEN
    assert await guard.call(failing()) == "ok"
