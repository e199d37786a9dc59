"""An OTLP export as the SDK encodes it, protobuf or JSON, reads as the same rows as the same
spans uploaded in an OTLP/JSON file; gzip is inflated within its limit."""

from __future__ import annotations

import gzip
import io
import random
import zlib

import pyarrow as pa
import pytest
from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans as encode_json
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as encode_proto
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from apex.analytics.importers.detect import read_batches
from apex.analytics.importers.otlp import ATTRIBUTES
from apex.analytics.importers.otlp_export import (
    JSON,
    PROTOBUF,
    UnreadableExport,
    gunzip,
    read_export,
)
from apex.analytics.normalize import LINE
from apex.errors import PayloadTooLarge


def recorded_spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "shop", "gen_ai.provider.name": "openai"})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    values: list[dict[str, object]] = [
        {
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.usage.cache_read.input_tokens": 20,
            "apex.tags": ["a", "b"],
            "enduser.id": "u1",
            "gen_ai.usage.cost": 0.25,
        },
        {
            "gen_ai.system": "anthropic",
            "gen_ai.response.model": "claude-sonnet-4",
            "gen_ai.usage.prompt_tokens": 7,
            "gen_ai.usage.completion_tokens": 3,
            "gen_ai.response.id": "msg_1",
        },
        {"http.method": "GET"},
    ]
    for i, attributes in enumerate(values):
        with tracer.start_as_current_span(f"span {i}", attributes=attributes) as span:
            if i == 1:
                span.set_status(Status(StatusCode.ERROR, "overloaded"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def rows(table: pa.Table) -> list[dict[str, object]]:
    return table.drop_columns([LINE]).select(sorted(set(table.column_names) - {LINE})).to_pylist()


def test_protobuf_json_and_an_uploaded_file_give_the_same_rows() -> None:
    spans = recorded_spans()
    as_json = encode_json(spans).to_json().encode()
    from_proto = read_export(encode_proto(spans).SerializeToString(), PROTOBUF)
    from_json = read_export(as_json, JSON)
    _format, batches = read_batches(io.BytesIO(as_json), "otlp", batch_rows=100)
    uploaded = list(batches)[0]
    assert from_proto.table.num_rows == 2 and from_proto.skipped == 1
    assert rows(from_proto.table) == rows(from_json.table) == rows(uploaded.table)
    first, second = rows(from_proto.table)
    assert first["request_id"] == spans[0].context.span_id.to_bytes(8, "big").hex()
    assert (first["model"], first["provider"], first["tags"]) == ("gpt-4o", "openai", '["a","b"]')
    assert (second["status"], second["error_type"], second["request_id"]) == (
        "error",
        "overloaded",
        "msg_1",
    )


def varied_spans(seed: int, count: int) -> list[ReadableSpan]:
    """Spans whose mapped attributes take every kind of value the SDK sends (text, blank text,
    whole numbers, fractions, booleans, lists), under and over the resource's, in any order."""
    rng = random.Random(seed)
    names = [name for names in ATTRIBUTES.values() for name in names] + ["http.method"]
    values: list[AttributeValue] = ["gpt-4o", "", " padded ", "12", 0, 120, -3, 2**62, 0.25, 1e20]
    values += [True, False, ["a", "b"], [], [True], [1.5, 2.5]]
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({rng.choice(names): rng.choice(values) for _ in range(3)})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests")
    for i in range(count):
        attributes: dict[str, AttributeValue] = {
            rng.choice(names): rng.choice(values) for _ in range(rng.randrange(9))
        }
        if rng.random() < 0.8:
            attributes["gen_ai.request.model"] = rng.choice(["gpt-4o", "o4-mini", ""])
        with tracer.start_as_current_span(f"span {i}", attributes=attributes) as span:
            if rng.random() < 0.3:
                span.set_status(Status(StatusCode.ERROR, rng.choice(["", "overloaded"])))
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.parametrize("seed", range(5))
def test_varied_spans_read_the_same_from_protobuf_and_from_json(
    seed: int,
) -> None:
    spans = varied_spans(seed, 300)
    from_proto = read_export(encode_proto(spans).SerializeToString(), PROTOBUF)
    from_json = read_export(encode_json(spans).to_json().encode(), JSON)
    assert from_proto.table.num_rows > 100
    assert from_proto.table.column_names == from_json.table.column_names
    assert from_proto.table.equals(from_json.table)
    assert (from_proto.skipped, from_proto.rejected) == (from_json.skipped, from_json.rejected)


def test_a_span_without_an_id_has_no_request_id() -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.start_time_unix_nano = 1_765_000_000_000_000_000
    span.attributes.add(key="gen_ai.request.model").value.string_value = "gpt-4o"
    batch = read_export(request.SerializeToString(), PROTOBUF)
    assert batch.table.num_rows == 1
    assert "request_id" not in batch.table.column_names
    assert batch.table.column("timestamp").to_pylist() == ["1765000000000000000"]


@pytest.mark.parametrize(
    ("body", "media"),
    [
        (b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF),
        (b"{", JSON),
        (b"[]", JSON),
        (b"\xff\xfe", JSON),
        (b'{"resourceSpans": 5}', JSON),
        (b'{"resourceSpans": [{"scopeSpans": [7]}]}', JSON),
        (b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON),
    ],
)
def test_a_body_that_is_not_an_export_is_refused(body: bytes, media: str) -> None:
    with pytest.raises(UnreadableExport):
        read_export(body, media)


def test_an_empty_export_has_no_rows() -> None:
    assert read_export(b"{}", JSON).table.num_rows == 0
    assert read_export(b"", PROTOBUF).table.num_rows == 0


def test_gzip_is_inflated_up_to_its_limit_and_no_further() -> None:
    data = b"x" * 100_000
    assert gunzip(gzip.compress(data), len(data)) == data
    with pytest.raises(PayloadTooLarge):
        gunzip(gzip.compress(data), len(data) - 1)
    with pytest.raises(PayloadTooLarge):
        gunzip(gzip.compress(b"\0" * (256 * 1_048_576)), 1_048_576)
    with pytest.raises(UnreadableExport):
        gunzip(gzip.compress(data)[:-20], len(data))
    with pytest.raises(UnreadableExport):
        gunzip(zlib.compress(data), len(data))
