"""Why a language-model call failed, as one small vocabulary every adapter and wrapper shares.

The fallback reports the `reason` to the caller, the circuit breaker counts provider failures, and
the metering wrapper records `reason` as the ledger's `error_type`, so all three must agree on it.
"""

from __future__ import annotations

from enum import StrEnum

from apex.errors import ServiceUnavailable
from apex.llm.usage import LlmUsage


class LlmFailureReason(StrEnum):
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    REJECTED = "rejected"
    INVALID_OUTPUT = "invalid_output"
    CIRCUIT_OPEN = "circuit_open"
    UNSUPPORTED_OUTPUT = "unsupported_output"
    UNEXPECTED_ERROR = "unexpected_error"


class LanguageModelError(ServiceUnavailable):
    """A language-model call that produced no usable answer.

    `usage` holds the tokens the failed call still consumed (an invalid structured reply is
    billed), so the metering wrapper can record them.
    """

    default_code = "llm_unavailable"

    def __init__(
        self,
        message: str,
        *,
        reason: LlmFailureReason,
        usage: LlmUsage | None = None,
        retryable: bool = False,
        provider_retry_after_s: float | None = None,
        provider_status: int | None = None,
    ) -> None:
        super().__init__(message, details={"reason": reason.value})
        self.reason = reason
        self.usage = usage or LlmUsage()
        self.retryable = retryable
        # the provider's own answer, kept apart from `status` and `retry_after_s`, which are
        # what Apex answers its own client with (503, and a whole number of seconds)
        self.provider_retry_after_s = provider_retry_after_s
        self.provider_status = provider_status
