"""JSON Lines, OTLP/JSON spans and LiteLLM spend logs: mapping, line numbers, bad input."""

from __future__ import annotations

import io
import json

import pytest

from apex.analytics.importers.base import UnreadableFile
from apex.analytics.importers.detect import read_batches
from apex.analytics.normalize import LINE


def load(data: bytes, fmt: str | None = None):  # type: ignore[no-untyped-def]
    chosen, batches = read_batches(io.BytesIO(data), fmt, batch_rows=2)
    rows, errors, rejected, skipped = [], [], 0, 0
    for batch in batches:
        rows.extend(batch.table.to_pylist())
        errors.extend((e.line, e.message) for e in batch.errors)
        rejected += batch.rejected
        skipped += batch.skipped
    return chosen, rows, errors, rejected, skipped


def test_jsonl_maps_nested_keys_and_reports_bad_lines() -> None:
    lines = [
        json.dumps(
            {
                "model": "gpt-4o",
                "created_at": "2024-05-01T10:00:00Z",
                "usage": {
                    "prompt_tokens": 12,
                    "completion_tokens": 3,
                    "prompt_tokens_details": {"cached_tokens": 4},
                },
                "tags": ["a", "b"],
                "success": True,
            }
        ),
        "{not json",
        "[1, 2]",
        "",
        json.dumps({"Model": "x", "TIMESTAMP": 1714557600, "cost": 0.25}),
    ]
    chosen, rows, errors, rejected, _ = load("\n".join(lines).encode())
    assert chosen == "jsonl"
    assert rejected == 2
    assert errors[0][0] == 2 and errors[0][1].startswith("invalid JSON")
    assert errors[1] == (3, "expected a JSON object, got array")
    first, second = rows
    assert first[LINE] == 1 and second[LINE] == 5
    assert (first["model"], first["input_tokens"], first["output_tokens"]) == ("gpt-4o", "12", "3")
    assert first["cached_input_tokens"] == "4"
    assert first["tags"] == '["a","b"]'
    assert first["status"] == "true"
    assert (second["model"], second["timestamp"], second["cost_usd"]) == ("x", "1714557600", "0.25")


def test_jsonl_names_what_a_line_holds_instead_of_an_object() -> None:
    data = b'[1]\n-2\n3.5\n"text"\nnull\ntrue\n{bad\n\n \t\r\n{"model":"m","timestamp":1}\n'
    _, rows, errors, rejected, _ = load(data, "jsonl")
    assert [row[LINE] for row in rows] == [10]
    assert rejected == 7
    assert errors == [
        (1, "expected a JSON object, got array"),
        (2, "expected a JSON object, got number"),
        (3, "expected a JSON object, got number"),
        (4, "expected a JSON object, got string"),
        (5, "expected a JSON object, got null"),
        (6, "expected a JSON object, got boolean"),
        (7, "invalid JSON"),
    ]


def test_jsonl_empty_lines_between_objects_keep_the_line_numbers() -> None:
    data = b'{"model":"m","timestamp":1}\n\n\n{"model":"n","timestamp":2}\n\n'
    _, rows, errors, rejected, _ = load(data, "jsonl")
    assert [(row[LINE], row["model"]) for row in rows] == [(1, "m"), (4, "n")]
    assert rejected == 0 and errors == []


def test_jsonl_line_that_opens_like_an_object_but_is_not_json_is_the_only_one_refused() -> None:
    data = (
        b'{"model":"m","timestamp":1}\n\n{"model":"n",\n{"model":"o","timestamp":2}\n'
        b'{"model":"p"} trailing\n{"model":"q","timestamp":3}'
    )
    _, rows, errors, rejected, _ = load(data, "jsonl")
    assert [(row[LINE], row["model"]) for row in rows] == [(1, "m"), (4, "o"), (6, "q")]
    assert rejected == 2
    assert errors == [(3, "invalid JSON"), (5, "invalid JSON")]


def test_jsonl_finds_a_key_that_only_one_row_has() -> None:
    lines = [json.dumps({"model": "a", "timestamp": i}) for i in range(500)]
    lines.insert(321, json.dumps({"model": "b", "timestamp": 9, "feature": "only-here"}))
    _, rows, errors, _, _ = load(("\n".join(lines) + "\n").encode(), "jsonl")
    assert not errors and len(rows) == 501
    assert [row[LINE] for row in rows] == list(range(1, 502))
    assert [row["feature"] for row in rows if row["feature"]] == ["only-here"]
    assert rows[321]["model"] == "b"


def test_jsonl_rejects_invalid_utf8_lines_only() -> None:
    data = b'{"model":"a","timestamp":1}\n{"model":"\xff"}\n{"model":"b","timestamp":2}\n'
    _, rows, errors, _, _ = load(data, "jsonl")
    assert [row["model"] for row in rows] == ["a", "b"]
    assert errors == [(2, "not valid UTF-8 text")]


def _span(
    span_id: str, model: str | None, *, error: bool = False, **attributes: object
) -> dict[str, object]:
    attrs = [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]
    if model:
        attrs.append({"key": "gen_ai.request.model", "value": {"stringValue": model}})
    for key, value in attributes.items():
        name = key.replace("__", ".")
        if isinstance(value, int):
            attrs.append({"key": name, "value": {"intValue": str(value)}})
        elif isinstance(value, list):
            attrs.append(
                {
                    "key": name,
                    "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}},
                }
            )
        else:
            attrs.append({"key": name, "value": {"stringValue": str(value)}})
    span: dict[str, object] = {
        "traceId": "t" * 32,
        "spanId": span_id,
        "name": "chat",
        "startTimeUnixNano": "1714557600000000000",
        "endTimeUnixNano": "1714557601250000000",
        "attributes": attrs,
    }
    if error:
        span["status"] = {"code": 2, "message": "rate limited"}
    return span


def _request(*spans: dict[str, object]) -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "opentelemetry.instrumentation.openai"},
                        "spans": list(spans),
                    }
                ],
            }
        ]
    }


def test_otlp_spans_with_gen_ai_attributes_become_rows() -> None:
    ok = _span(
        "a1",
        "gpt-4o-mini",
        gen_ai__provider__name="openai",
        gen_ai__usage__input_tokens=100,
        gen_ai__usage__output_tokens=20,
        gen_ai__usage__cache_read__input_tokens=60,
        apex__feature="search",
        apex__tags=["beta", "Batch"],
        enduser__id="u-7",
    )
    failed = _span(
        "b2",
        "claude-3-5-haiku",
        error=True,
        gen_ai__system="anthropic",
        gen_ai__usage__prompt_tokens=5,
        error__type="RateLimitError",
    )
    http = _span("c3", None)
    lines = [json.dumps(_request(ok, http)), json.dumps(_request(failed)), "not json at all"]
    chosen, rows, errors, rejected, skipped = load("\n".join(lines).encode())
    assert chosen == "otlp"
    assert skipped == 1 and rejected == 1 and errors[0][0] == 3
    first, second = rows
    assert first == {
        **first,
        "model": "gpt-4o-mini",
        "provider": "openai",
        "input_tokens": "100",
        "output_tokens": "20",
        "cached_input_tokens": "60",
        "feature": "search",
        "tags": '["beta","Batch"]',
        "end_user": "u-7",
        "timestamp": "1714557600000000000",
        "end_time": "1714557601250000000",
        "status": "ok",
        "request_id": "a1",
        LINE: 1,
    }
    assert (second["status"], second["error_type"], second["provider"]) == (
        "error",
        "RateLimitError",
        "anthropic",
    )
    assert second[LINE] == 2


def test_otlp_single_pretty_printed_document() -> None:
    document = json.dumps(
        _request(_span("a1", "gpt-4o", gen_ai__usage__input_tokens=1)), indent=2
    ).encode()
    chosen, rows, errors, _, _ = load(document)
    assert chosen == "otlp" and errors == [] and rows[0]["model"] == "gpt-4o"


def test_otlp_request_without_resource_spans_is_reported() -> None:
    _, rows, errors, rejected, _ = load(b'{"resourceSpans": 3}\n', "otlp")
    assert rows == [] and rejected == 1
    assert errors == [(1, "expected an OTLP export request with `resourceSpans`")]


@pytest.mark.parametrize(
    "request_body",
    [
        {"resourceSpans": [{"scopeSpans": ["x"]}]},
        {"resourceSpans": [{"scopeSpans": {"spans": []}}]},
        {"resourceSpans": [{"resource": "x", "scopeSpans": [{"spans": "x"}]}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"status": "x", "attributes": 5}]}]}]},
        {"resourceSpans": [{"resource": {"attributes": [{"key": 5}]}, "scopeSpans": [None]}]},
    ],
)
def test_otlp_requests_of_the_wrong_shape_never_raise(request_body: object) -> None:
    good = _request(_span("ok1", "gpt-4o", gen_ai__usage__input_tokens=1))
    data = (json.dumps(request_body) + "\n" + json.dumps(good) + "\n").encode()
    _, rows, errors, _, _ = load(data, "otlp")
    assert [row["request_id"] for row in rows] == ["ok1"]
    assert all(line == 1 for line, _message in errors)


def _spend_log(request_id: str, **extra: object) -> dict[str, object]:
    return {
        "request_id": request_id,
        "call_type": "acompletion",
        "api_key": "hashed",
        "spend": 0.0021,
        "total_tokens": 120,
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "startTime": "2024-05-01T10:00:00.000Z",
        "endTime": "2024-05-01T10:00:01.500Z",
        "completionStartTime": "2024-05-01T10:00:00.400Z",
        "model": "gpt-4o",
        "custom_llm_provider": "openai",
        "user": "internal",
        "end_user": "customer-1",
        "status": "success",
        "request_tags": ["prod"],
        "messages": [{"secret": "x"}],
        "metadata": {
            "additional_usage_values": {
                "prompt_tokens_details": {"cached_tokens": 40},
                "completion_tokens_details": {"reasoning_tokens": 5},
            },
            "spend_logs_metadata": {"feature": "support-bot"},
        },
        **extra,
    }


def test_litellm_json_array_lifts_metadata_and_drops_bodies() -> None:
    rows_in = [
        _spend_log("r1"),
        _spend_log(
            "r2",
            status="failure",
            metadata=json.dumps({"error_information": {"error_class": "Timeout"}}),
        ),
        "garbage",
    ]
    chosen, rows, errors, rejected, _ = load(json.dumps(rows_in).encode())
    assert chosen == "litellm"
    assert rejected == 1 and errors == [(3, "array element 3: expected an object")]
    first, second = rows
    assert first == {
        **first,
        "request_id": "r1",
        "model": "gpt-4o",
        "provider": "openai",
        "cost_usd": "0.0021",
        "input_tokens": "100",
        "output_tokens": "20",
        "cached_input_tokens": "40",
        "reasoning_tokens": "5",
        "feature": "support-bot",
        "end_user": "customer-1",
        "status": "success",
        "timestamp": "2024-05-01T10:00:00.000Z",
        "end_time": "2024-05-01T10:00:01.500Z",
        "first_token_time": "2024-05-01T10:00:00.400Z",
        "tags": '["prod"]',
    }
    assert "secret" not in json.dumps(rows)
    assert (second["status"], second["error_type"]) == ("failure", "Timeout")


def test_litellm_json_lines() -> None:
    data = "\n".join(json.dumps(_spend_log(f"r{i}")) for i in range(3)).encode()
    chosen, rows, errors, _, _ = load(data)
    assert chosen == "litellm" and errors == [] and [r[LINE] for r in rows] == [1, 2, 3]


def test_litellm_array_that_is_not_json_is_refused() -> None:
    with pytest.raises(UnreadableFile):
        load(b"[{broken", "litellm")


def test_small_chunks_are_joined_into_batches_with_every_count_and_error_kept() -> None:
    import pyarrow as pa

    from apex.analytics.importers.base import RawBatch, joined
    from apex.analytics.normalize import RejectedRow

    def chunk(first: int, rows: int, **extra: object) -> RawBatch:
        columns = {
            LINE: pa.array(range(first, first + rows), pa.int64()),
            "model": pa.array(["m"] * rows, pa.string()),
        }
        if extra.pop("tags", False):
            columns["tags"] = pa.array(["a"] * rows, pa.string())
        return RawBatch(pa.table(columns), bytes_read=first * 10, **extra)  # type: ignore[arg-type]

    chunks = [
        chunk(2, 40),
        chunk(42, 0, rejected=1, errors=[RejectedRow(42, "bad")]),
        chunk(43, 70, tags=True),
        chunk(113, 30, skipped=2),
        chunk(143, 5),
    ]
    batches = list(joined(chunks, 100))
    assert [b.table.num_rows for b in batches] == [110, 35]
    assert [b.table.column(LINE).to_pylist() for b in batches] == [
        list(range(2, 42)) + list(range(43, 113)),
        list(range(113, 148)),
    ]
    assert batches[0].table.column("tags").null_count == 40
    assert [(b.rejected, b.skipped, b.bytes_read) for b in batches] == [(1, 0, 430), (0, 2, 1430)]
    assert batches[0].errors == [RejectedRow(42, "bad")]
    only_errors = list(joined([chunk(2, 0, rejected=3)], 100))
    assert [(b.table.num_rows, b.rejected) for b in only_errors] == [(0, 3)]
