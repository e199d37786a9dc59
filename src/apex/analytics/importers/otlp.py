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

from apex.analytics.importers.base import RawBatch, UnreadableFile
from apex.analytics.importers.records import RecordBatcher, json_lines

MAX_DOCUMENT_BYTES = 64 * 1_048_576
STATUS_ERROR = (2, "STATUS_CODE_ERROR")

# ledger field -> span attributes that carry it, preferred first
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "provider": ("gen_ai.provider.name", "gen_ai.system"),
    "model": ("gen_ai.request.model", "gen_ai.response.model"),
    "operation": ("gen_ai.operation.name",),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "cached_input_tokens": ("gen_ai.usage.cache_read.input_tokens",
                            "gen_ai.usage.cache_read_input_tokens",
                            "gen_ai.usage.cached_tokens"),
    "reasoning_tokens": ("gen_ai.usage.reasoning.output_tokens",
                         "gen_ai.usage.reasoning_tokens"),
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
        return {item.get("key"): any_value(item.get("value"))
                for item in value["kvlistValue"].get("values", [])}
    return None


def attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {item["key"]: any_value(item.get("value")) for item in items
            if isinstance(item, dict) and isinstance(item.get("key"), str)}


def span_fields(span: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any] | None:
    """Ledger fields of one span, or None when it is not a GenAI call."""
    found = {**resource, **attributes(span.get("attributes"))}
    fields: dict[str, Any] = {}
    for field, names in ATTRIBUTES.items():
        for name in names:
            if found.get(name) not in (None, ""):
                fields[field] = found[name]
                break
    if "model" not in fields:
        return None
    fields["timestamp"] = span.get("startTimeUnixNano")
    fields["end_time"] = span.get("endTimeUnixNano")
    status = span.get("status") or {}
    if status.get("code") in STATUS_ERROR:
        fields["status"] = "error"
        fields.setdefault("error_type", status.get("message") or "error")
    else:
        fields["status"] = "ok"
    fields.setdefault("request_id", span.get("spanId"))
    return fields


def _add_request(batcher: RecordBatcher, line: int, request: Any) -> None:
    if not isinstance(request, dict) or not isinstance(request.get("resourceSpans"), list):
        batcher.reject(line, "expected an OTLP export request with `resourceSpans`")
        return
    for resource_spans in request["resourceSpans"]:
        if not isinstance(resource_spans, dict):
            batcher.reject(line, "`resourceSpans` entry is not an object")
            continue
        resource = attributes((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in (scope_spans or {}).get("spans") or []:
                if not isinstance(span, dict):
                    batcher.reject(line, "span is not an object")
                    continue
                fields = span_fields(span, resource)
                if fields is None:
                    batcher.skipped += 1
                else:
                    batcher.add_fields(line, fields)


def read_otlp(stream: BinaryIO, *, batch_rows: int) -> Iterator[RawBatch]:
    batcher = RecordBatcher(batch_rows)
    position = 0
    first = True
    for line, value, error, position in json_lines(stream):
        if error is not None and first and error.startswith("invalid JSON"):
            yield from _read_document(stream, batch_rows)
            return
        first = False
        if error is not None:
            batcher.reject(line, error)
        else:
            _add_request(batcher, line, value)
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
            code="file_too_large_for_format")
    try:
        request = json.loads(data.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnreadableFile(f"The file is not valid OTLP JSON: {exc}") from None
    batcher = RecordBatcher(batch_rows)
    _add_request(batcher, 1, request)
    yield batcher.take(len(data))
