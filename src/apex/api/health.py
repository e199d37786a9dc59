"""Liveness, readiness (every configured dependency, by name) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from apex.errors import DependencyUnavailable

router = APIRouter()

ReadinessCheck = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_S = 2.0


@router.get("/health/live", include_in_schema=False)
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", include_in_schema=False)
async def ready(request: Request) -> JSONResponse:
    checks: dict[str, ReadinessCheck] = request.app.state.readiness_checks
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
    failed = [name for name, result in results.items() if result != "ok"]
    if failed:
        return JSONResponse(
            {
                "status": "unavailable",
                "checks": results,
                "error": {
                    "code": "dependency_unavailable",
                    "message": f"Not ready: {', '.join(failed)} failed.",
                    "details": {"failed": failed},
                },
            },
            status_code=503,
            headers={"Retry-After": str(DependencyUnavailable.retry_after_s)},
        )
    return JSONResponse({"status": "ok", "checks": results})


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
