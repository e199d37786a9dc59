"""Timeouts, retries with backoff, and a circuit breaker around every provider request.

A provider request is retried on 429 (never sooner than its Retry-After, and not at all when that
is longer than we are willing to wait), on 5xx, timeouts and connection errors, with exponential
backoff and jitter; other 4xx are final. After `failure_threshold` failed calls in a row the
breaker opens and calls fail at once (so the fallback answers immediately instead of every run
waiting out the timeouts); after `reset_timeout_s` one probe call is let through (half-open), and
its outcome closes or re-opens the breaker. Sleep and clock are injectable so tests need not wait.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from apex.llm.errors import LanguageModelError, LlmFailureReason
from apex.llm.usage import LlmUsage

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ProviderRetryPolicy:
    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 30.0

    def delay_s(
        self, failed_attempts: int, retry_after_s: float | None, rng: random.Random
    ) -> float | None:
        """How long to wait before the next attempt, or None when the call should give up.

        Backoff uses "equal jitter": half the exponential step, plus a random half, so retries
        from many runs spread out but never fire immediately.
        """
        if failed_attempts >= self.max_attempts:
            return None
        if retry_after_s is not None:
            if retry_after_s > self.max_retry_after_s:
                return None
            return retry_after_s + rng.uniform(0, min(1.0, 0.1 * retry_after_s + 0.05))
        step = min(self.max_delay_s, self.base_delay_s * 2.0 ** (failed_attempts - 1))
        return step / 2 + rng.uniform(0, step / 2)


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """Consecutive failed calls open it; one probe at a time is let through once it cools down."""

    failure_threshold: int = 5
    reset_timeout_s: float = 30.0
    clock: Clock = time.monotonic
    _state: CircuitState = field(default=CircuitState.CLOSED, init=False)
    _failures: int = field(default=0, init=False)
    _opened_at: float = field(default=0.0, init=False)
    _probing: bool = field(default=False, init=False)

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._cooled_down():
            return CircuitState.HALF_OPEN
        return self._state

    def _cooled_down(self) -> bool:
        return self.clock() - self._opened_at >= self.reset_timeout_s

    def acquire(self) -> None:
        """Admit a call or raise `circuit_open`; in half-open state only one probe is admitted."""
        if self._state is CircuitState.OPEN and self._cooled_down():
            self._state = CircuitState.HALF_OPEN
        if self._state is CircuitState.CLOSED:
            return
        if self._state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return
        retry_in = max(0.0, self.reset_timeout_s - (self.clock() - self._opened_at))
        raise LanguageModelError(
            f"circuit open after {self._failures} consecutive failures; next probe in "
            f"{retry_in:.0f} s",
            reason=LlmFailureReason.CIRCUIT_OPEN,
            provider_retry_after_s=retry_in,
        )

    def succeeded(self) -> None:
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._probing = False

    def failed(self) -> None:
        self._failures += 1
        self._probing = False
        if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._state = CircuitState.OPEN
            self._opened_at = self.clock()

    def abandoned(self) -> None:
        """A call was cancelled: it proves nothing, so a half-open breaker may probe again."""
        self._probing = False


@dataclass
class ProviderGuard:
    """Runs one provider request under the timeout, the retry policy and the breaker."""

    timeout_s: float = 30.0
    retry: ProviderRetryPolicy = field(default_factory=ProviderRetryPolicy)
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    async def call(self, request: Callable[[], Awaitable[T]]) -> T:
        """`request` must raise `LanguageModelError` for provider failures (adapters translate)."""
        self.breaker.acquire()
        failed_attempts = 0
        try:
            while True:
                try:
                    async with asyncio.timeout(self.timeout_s):
                        result = await request()
                except TimeoutError:
                    error = LanguageModelError(
                        f"no answer within {self.timeout_s:g} s",
                        reason=LlmFailureReason.TIMEOUT,
                        retryable=True,
                    )
                except LanguageModelError as exc:
                    error = exc
                else:
                    self.breaker.succeeded()
                    return result
                failed_attempts += 1
                delay = (
                    self.retry.delay_s(failed_attempts, error.provider_retry_after_s, self.rng)
                    if error.retryable
                    else None
                )
                if delay is None:
                    self.breaker.failed()
                    error.usage = error.usage + LlmUsage(requests=failed_attempts)
                    raise error
                await self.sleep(delay)
        except asyncio.CancelledError:
            self.breaker.abandoned()
            raise
        except LanguageModelError:
            raise
        except Exception:
            self.breaker.failed()
            raise
