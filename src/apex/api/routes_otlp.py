"""`POST /v1/traces`, the OTLP/HTTP receiver (PROTOCOL section 6), authenticated by an
ingestion key. The body is read with a size limit, inflated with the same limit, decoded in a
worker thread and handed to the live batcher (analytics/live_ingest.py); the answer waits for
the spans to be normalized, so partial success names exactly the spans refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from apex.analytics.importers.otlp_export import JSON, PROTOBUF, gunzip, read_export, too_large
from apex.analytics.live_ingest import ExportOutcome, LiveIngest
from apex.auth.ingestion_keys import IngestionKeys
from apex.errors import ApexError, RateLimited, ServiceUnavailable

router = APIRouter(tags=["ingestion"])

# how long an export waits for its spans to be normalized before it is told to try again
NORMALIZE_TIMEOUT_S = 30.0
_BEARER = "bearer "


class UnsupportedMediaType(ApexError):
    status = 415
    default_code = "unsupported_media_type"


def _media_type(request: Request) -> str:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        raise UnsupportedMediaType(
            f"Send OTLP as {PROTOBUF} or {JSON}.", details={"accepted": [PROTOBUF, JSON]}
        )
    return media


def _gzipped(request: Request) -> bool:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("gzip", "identity", ""):
        raise UnsupportedMediaType(
            "Send the body as is or with `Content-Encoding: gzip`.",
            code="unsupported_content_encoding",
        )
    return encoding == "gzip"


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


async def _owner(request: Request) -> str:
    header = request.headers.get("authorization", "")
    key = header[len(_BEARER) :].strip() if header.lower().startswith(_BEARER) else None
    keys: IngestionKeys = request.app.state.ingestion_keys
    return await keys.owner(key)


def _answer(outcome: ExportOutcome, media: str) -> Response:
    message = "; ".join(dict.fromkeys(outcome.messages)) if outcome.rejected else ""
    if media == PROTOBUF:
        answer = ExportTraceServiceResponse()
        if outcome.rejected:
            answer.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=outcome.rejected, error_message=message)
            )
        return Response(answer.SerializeToString(), media_type=PROTOBUF)
    body: dict[str, Any] = {}
    if outcome.rejected:
        body["partial_success"] = {"rejected_spans": outcome.rejected, "error_message": message}
    return JSONResponse(body)


@router.post("/v1/traces", responses={200: {"description": "ExportTraceServiceResponse"}})
async def export_traces(request: Request) -> Response:
    live: LiveIngest = request.app.state.live_ingest
    gate: asyncio.Semaphore = request.app.state.otlp_requests
    limit = request.app.state.settings.otlp_max_request_bytes
    tenant_id = await _owner(request)
    media = _media_type(request)
    gzipped = _gzipped(request)
    live.refuse_if_full()
    if gate.locked():
        raise RateLimited(
            "The server is reading many exports; send this batch again.",
            retry_after_s=1,
            code="ingest_busy",
        )
    async with gate:
        body = await _body(request, limit)
        if gzipped:
            body = await asyncio.to_thread(gunzip, body, limit)
        batch = await asyncio.to_thread(read_export, body, media)
        del body
        done = live.submit(tenant_id, batch)
    try:
        outcome = await asyncio.wait_for(asyncio.wrap_future(done), NORMALIZE_TIMEOUT_S)
    except TimeoutError:
        raise ServiceUnavailable(
            "The server is slow to save spans; send this batch again.", code="ingest_slow"
        ) from None
    return _answer(outcome, media)
