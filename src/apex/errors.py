"""Domain errors with the protocol's error code; the API maps them to the PROTOCOL.md error shape.

They live at the bottom of the package so every layer can raise them without knowing HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApexError(Exception):
    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"
    # when set, the answer carries `Retry-After`: the client may simply try again then
    retry_after_s: int | None = None

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class BadRequest(ApexError):
    status = 400
    default_code = "bad_request"


class Unauthorized(ApexError):
    status = 401
    default_code = "unauthorized"


class Forbidden(ApexError):
    status = 403
    default_code = "forbidden"


class NotFound(ApexError):
    status = 404
    default_code = "not_found"


class Conflict(ApexError):
    status = 409
    default_code = "conflict"


class InvalidJson(ApexError):
    """A body that cannot be understood at all: PROTOCOL.md keeps 422 for this alone."""

    status = 422
    default_code = "invalid_json"

    def __init__(self) -> None:
        super().__init__("The request body is not valid JSON.")


class PayloadTooLarge(ApexError):
    status = 413
    default_code = "payload_too_large"


class RateLimited(ApexError):
    status = 429
    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class ServiceUnavailable(ApexError):
    status = 503
    default_code = "service_unavailable"
    retry_after_s = 5


class DependencyUnavailable(ServiceUnavailable):
    """A service the request needs (the app database, Redis) is not answering: a 503 the client
    retries, never a 500. `details.dependency` names it, as `/health/ready` does."""

    default_code = "dependency_unavailable"
    retry_after_s = 2

    LABELS: ClassVar[dict[str, str]] = {"database": "the app database", "redis": "Redis"}

    def __init__(self, dependency: str, action: str) -> None:
        label = self.LABELS.get(dependency, dependency)
        super().__init__(
            f"{action} needs {label}, which is not answering; try again shortly.",
            details={"dependency": dependency},
        )
        self.dependency = dependency
