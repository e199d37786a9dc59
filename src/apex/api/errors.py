"""Every error leaves the API in the PROTOCOL.md shape: {"error": {code, message, details}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from apex.config.logging import get_logger
from apex.errors import ApexError, DependencyUnavailable, InvalidJson
from apex.shared_redis.errors import RedisError
from apex.store.database import POSTGRES_ERRORS, is_unreachable

log = get_logger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_body",
    429: "rate_limited",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


async def _apex_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApexError)
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
    return error_response(exc.status, exc.code, exc.message, exc.details, headers)


def dependency_error(exc: BaseException) -> DependencyUnavailable | None:
    """The 503 an outage of the app database or Redis deserves, or None for any other error."""
    if isinstance(exc, RedisError):
        return DependencyUnavailable("redis", "This request")
    if is_unreachable(exc):
        return DependencyUnavailable("database", "This request")
    return None


async def _dependency_or_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Errors an outage raises (driver, SQLAlchemy, socket, Redis): a 503 with `Retry-After`
    when a dependency is down, else the same 500 as any other unexpected error."""
    unavailable = dependency_error(exc)
    if unavailable is None:
        return await _unexpected(request, exc)
    log.warning("dependency_unavailable", dependency=unavailable.dependency, error=repr(exc)[:300])
    return await _apex_error(request, unavailable)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


def _describe(error: dict[str, Any]) -> dict[str, Any]:
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    return {"field": ".".join(loc) or "body", "message": error.get("msg", "invalid")}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """Undecodable JSON is 422 (cannot be understood); wrong or missing fields are 400."""
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return await _apex_error(request, InvalidJson())
    problems = [_describe(e) for e in errors[:20]]
    first = problems[0] if problems else {"field": "body", "message": "invalid"}
    return error_response(
        400,
        "validation_error",
        f"{first['field']}: {first['message']}",
        {"errors": problems},
    )


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error=repr(exc))
    return error_response(500, "internal_error", "Something went wrong on our side.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApexError, _apex_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for outage in (SQLAlchemyError, OSError, *POSTGRES_ERRORS, RedisError):
        app.add_exception_handler(outage, _dependency_or_unexpected)
    app.add_exception_handler(Exception, _unexpected)
