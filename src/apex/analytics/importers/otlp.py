"""OTLP/JSON trace exports: spans with OpenTelemetry GenAI (`gen_ai.*`) attributes.

Accepts what the OpenTelemetry SDK's OTLP JSON exporter and the collector's file exporter
write: `ExportTraceServiceRequest` objects (`resourceSpans` -> `scopeSpans` -> `spans`), one
per line, or a single document. Spans without a model (HTTP, database, ...) are counted as
skipped, not as errors. A problem is reported on the line of its request, naming the span.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from apex.analytics.importers.base import TOO_DEEP, RawBatch, UnreadableFile, too_deep
from apex.analytics.importers.records import RecordBatcher, as_text, json_lines

MAX_DOCUMENT_BYTES = 64 * 1_048_576
STATUS_ERROR = (2, "STATUS_CODE_ERROR")

# ledger field -> span attributes that carry it, preferred first
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "provider": ("gen_ai.provider.name", "gen_ai.system"),
    "model": ("gen_ai.request.model", "gen_ai.response.model"),
    "operation": ("gen_ai.operation.name",),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "cached_input_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.cached_tokens",
    ),
    "cache_write_input_tokens": (
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
    ),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens"),
    "cost_usd": ("gen_ai.usage.cost", "gen_ai.cost.usd", "apex.cost_usd"),
    "error_type": ("error.type",),
    "feature": ("apex.feature", "app.feature", "feature", "gen_ai.agent.name"),
    "tags": ("apex.tags", "tags"),
    "end_user": ("enduser.id", "user.id", "gen_ai.user.id"),
    "prompt_hash": ("apex.prompt_hash", "gen_ai.prompt.hash"),
    "prefix_hash": ("apex.prefix_hash",),
    "prefix_tokens": ("apex.prefix_tokens",),
    "ttft_ms": ("apex.ttft_ms", "gen_ai.response.time_to_first_token_ms"),
    "prompt": ("gen_ai.input.messages", "gen_ai.prompt"),
    "request_id": ("gen_ai.response.id",),
}

# attribute name -> (ledger field, rank among its names): read by walking a span's attributes
_FIELD_OF = {
    name: (field, rank) for field, names in ATTRIBUTES.items() for rank, name in enumerate(names)
}
_UNRANKED = len(_FIELD_OF)
# the attributes the mapping reads: the values of the others are never converted
MAPPED = frozenset(_FIELD_OF)


def any_value(value: Any) -> Any:
    """An OTLP/JSON AnyValue to a Python value (intValue is a string in OTLP/JSON)."""
    if not isinstance(value, dict):
        return value
    for key in ("stringValue", "boolValue", "intValue", "doubleValue"):
        if key in value:
            return value[key]
    if "arrayValue" in value:
        return [any_value(item) for item in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return {
            item.get("key"): any_value(item.get("value"))
            for item in value["kvlistValue"].get("values", [])
        }
    return None


def attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {
        item["key"]: any_value(item.get("value"))
        for item in items
        if isinstance(item, dict) and isinstance(item.get("key"), str)
    }


def span_row(span: dict[str, Any], resource: dict[str, Any]) -> dict[str, str] | None:
    """The text row of one span, or None when it is not a GenAI call."""
    status = _member(span, "status", dict)
    found = {
        name: as_text(value)
        for name, value in {**resource, **attributes(span.get("attributes"))}.items()
        if name in MAPPED
    }
    return genai_row(
        found,
        start=as_text(span.get("startTimeUnixNano")),
        end=as_text(span.get("endTimeUnixNano")),
        failed=status.get("code") in STATUS_ERROR,
        status_message=as_text(status.get("message")),
        span_id=as_text(span.get("spanId")),
    )


def genai_row(
    found: dict[str, str | None],
    *,
    start: str | None,
    end: str | None,
    failed: bool,
    status_message: str | None,
    span_id: str | None,
) -> dict[str, str] | None:
    """The text row of a span given its attributes as text (resource's under the span's), or
    None when it is not a GenAI call: the one mapping of OTLP/JSON files and of protobuf spans
    received live. Of the names of one field, the first in ATTRIBUTES that has a value wins."""
    row: dict[str, str] = {}
    ranks: dict[str, int] = {}
    for name, value in found.items():
        mapped = _FIELD_OF.get(name)
        if mapped is None or not value:
            continue
        field, rank = mapped
        if ranks.get(field, _UNRANKED) > rank:
            ranks[field] = rank
            row[field] = value
    if "model" not in row:
        return None
    if start is not None:
        row["timestamp"] = start
    if end is not None:
        row["end_time"] = end
    if failed:
        row["status"] = "error"
        row.setdefault("error_type", status_message or "error")
    else:
        row["status"] = "ok"
    if span_id:
        row.setdefault("request_id", span_id)
    return row


def _member(parent: dict[str, Any], key: str, kind: type) -> Any:
    """`parent[key]` when it has the JSON type the OTLP schema gives it, else an empty one: a
    request of the wrong shape is refused by its spans, never by an exception."""
    value = parent.get(key)
    return value if isinstance(value, kind) else kind()


def add_request(batcher: RecordBatcher, line: int, request: Any) -> None:
    if not isinstance(request, dict) or not isinstance(request.get("resourceSpans"), list):
        batcher.reject(line, "expected an OTLP export request with `resourceSpans`")
        return
    for resource_spans in request["resourceSpans"]:
        if not isinstance(resource_spans, dict):
            batcher.reject(line, "`resourceSpans` entry is not an object")
            continue
        resource = attributes(_member(resource_spans, "resource", dict).get("attributes"))
        for scope_spans in _member(resource_spans, "scopeSpans", list):
            if not isinstance(scope_spans, dict):
                batcher.reject(line, "`scopeSpans` entry is not an object")
                continue
            for span in _member(scope_spans, "spans", list):
                if not isinstance(span, dict):
                    batcher.reject(line, "span is not an object")
                    continue
                row = span_row(span, resource)
                if row is None:
                    batcher.skipped += 1
                else:
                    batcher.add_row(line, row)


def _add_bounded(batcher: RecordBatcher, line: int, request: Any) -> None:
    """`add_request`, with attribute values nested past what the parser goes refused."""
    try:
        add_request(batcher, line, request)
    except RecursionError:
        batcher.reject(line, TOO_DEEP)


def read_otlp(stream: BinaryIO, *, batch_rows: int) -> Iterator[RawBatch]:
    batcher = RecordBatcher(batch_rows)
    position = 0
    first = True
    for line, value, error, position in json_lines(stream):
        if error is not None and first and error.startswith("invalid JSON"):
            yield from _read_document(stream, batch_rows)
            return
        if error == TOO_DEEP and first:
            raise too_deep()  # a hostile file, not a usage export with one bad line
        first = False
        if error is not None:
            batcher.reject(line, error)
        else:
            _add_bounded(batcher, line, value)
        if batcher.full:
            yield batcher.take(position)
    yield batcher.take(position)


def _read_document(stream: BinaryIO, batch_rows: int) -> Iterator[RawBatch]:
    """A pretty-printed single export request: read whole, within MAX_DOCUMENT_BYTES."""
    stream.seek(0)
    data = stream.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise UnreadableFile(
            f"An OTLP JSON document over {MAX_DOCUMENT_BYTES // 1_048_576} MiB cannot be read at "
            "once: write one export request per line (the collector's file exporter does).",
            code="file_too_large_for_format",
        )
    try:
        request = json.loads(data.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnreadableFile(f"The file is not valid OTLP JSON: {exc}") from None
    except RecursionError:
        raise too_deep() from None
    batcher = RecordBatcher(batch_rows)
    _add_bounded(batcher, 1, request)
    yield batcher.take(len(data))
