"""One OTLP/HTTP trace export (`ExportTraceServiceRequest`), protobuf or JSON, to a RawBatch.

Both encodings go through the OTLP upload's mapping (`otlp.genai_row`): protobuf spans are
read with the `opentelemetry-proto` classes and their attributes handed over as the text the
JSON encoding carries once read (ids in hex, as OTLP/JSON writes them, so a span sent either
way, or uploaded in a file, is the same row). Walking the parsed message directly, turning
each value the mapping reads into text once, costs about 12 µs a span of seven attributes
(`json_format` costs fifty); touching the attributes alone costs about seven. Every row is on
line 1 (the receiver numbers rows across the exports it normalizes together); spans that are
not GenAI calls are counted as skipped.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from apex.analytics.importers.base import TOO_DEEP, RawBatch, UnreadableFile
from apex.analytics.importers.otlp import MAPPED, add_request, genai_row
from apex.analytics.importers.records import RecordBatcher, as_text
from apex.errors import PayloadTooLarge

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_NO_LIMIT = 2**62
_GZIP_WINDOW = 16 + zlib.MAX_WBITS
_INFLATE_STEP = 1_048_576


class UnreadableExport(UnreadableFile):
    default_code = "invalid_otlp_request"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _text(value: AnyValue) -> str | None:
    """An attribute's value as the text its OTLP/JSON form carries once read. A non-empty
    `string_value` can only be the value set (most attributes are strings: one call then)."""
    text = value.string_value
    if text:
        return text
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    return as_text(_value(value))


def _from_protobuf(body: bytes, batcher: RecordBatcher) -> None:
    try:
        request = ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise UnreadableExport(f"The body is not an OTLP protobuf export request: {exc}") from None
    error = Status.STATUS_CODE_ERROR
    for resource_spans in request.resource_spans:
        resource = {
            item.key: _text(item.value)
            for item in resource_spans.resource.attributes
            if item.key in MAPPED
        }
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found = dict(resource)
                for item in span.attributes:
                    key = item.key
                    if key in MAPPED:
                        found[key] = _text(item.value)
                status = span.status
                failed = status.code == error
                row = genai_row(
                    found,
                    start=str(span.start_time_unix_nano),
                    end=str(span.end_time_unix_nano),
                    failed=failed,
                    status_message=status.message if failed else None,
                    span_id=span.span_id.hex(),
                )
                if row is None:
                    batcher.skipped += 1
                else:
                    batcher.add_row(1, row)


def _from_json(body: bytes, batcher: RecordBatcher) -> None:
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableExport(f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise UnreadableExport(f"The body is not an OTLP export: {TOO_DEEP}.") from None
    if not isinstance(request, dict):
        raise UnreadableExport("An OTLP/JSON export request is an object with `resourceSpans`.")
    if request.get("resourceSpans") is None:
        return
    if not isinstance(request["resourceSpans"], list):
        raise UnreadableExport("`resourceSpans` of an OTLP/JSON export request is a list.")
    try:
        add_request(batcher, 1, request)
    except RecursionError:
        raise UnreadableExport(f"The body is not an OTLP export: {TOO_DEEP}.") from None
    if batcher.rejected:
        # a file upload refuses such an entry on its line; one export is one message, and a
        # message that does not follow the schema is refused whole, as OTLP/HTTP asks
        raise UnreadableExport(
            "The body is not an OTLP/JSON export request: `resourceSpans`, "
            "`scopeSpans` and `spans` must be lists of objects."
        )


def read_export(body: bytes, content_type: str) -> RawBatch:
    """The spans of one export request; `content_type` is PROTOBUF or JSON."""
    batcher = RecordBatcher(_NO_LIMIT)
    if content_type == PROTOBUF:
        _from_protobuf(body, batcher)
    else:
        _from_json(body, batcher)
    return batcher.take(len(body))


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The export is larger than the limit of {limit} bytes (once "
        "decompressed): send smaller batches.",
        details={"limit_bytes": limit},
    )


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body, refusing it as soon as it passes `limit` bytes (a small body that
    inflates without end never gets more than `limit` of memory)."""
    inflater = zlib.decompressobj(_GZIP_WINDOW)
    parts: list[bytes] = []
    size = 0
    pending = body
    try:
        while pending:
            part = inflater.decompress(pending, min(_INFLATE_STEP, limit - size + 1))
            size += len(part)
            if size > limit:
                raise too_large(limit)
            parts.append(part)
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
        if not inflater.eof:
            raise UnreadableExport("The gzip body ends before its end of stream.")
    except zlib.error as exc:
        raise UnreadableExport(f"The body is not valid gzip: {exc}") from None
    return b"".join(parts)
