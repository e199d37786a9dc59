"""The CSV reader: exact line numbers, structural errors, encodings, dialects, hostile files."""

from __future__ import annotations

import io

import pytest

from apex.analytics.importers.base import UnreadableFile
from apex.analytics.importers.csv import CsvReader
from apex.analytics.importers.detect import detect_format, read_batches
from apex.analytics.normalize import LINE


def read(data: bytes, batch_rows: int = 1000):  # type: ignore[no-untyped-def]
    rows: list[dict[str, object]] = []
    errors = []
    rejected = 0
    for batch in CsvReader(io.BytesIO(data), batch_rows=batch_rows).batches():
        rows.extend(batch.table.to_pylist())
        errors.extend(batch.errors)
        rejected += batch.rejected
    return rows, [(e.line, e.message) for e in errors], rejected


def test_headers_match_aliases_case_insensitively() -> None:
    data = (
        b"Model_Name,Prompt Tokens,completionTokens,Spend,Duration_MS,Created_At\n"
        b"gpt-4o,10,2,0.5,120,2024-05-01T10:00:00Z\n"
    )
    rows, errors, _ = read(data)
    assert errors == []
    assert rows == [
        {
            "model": "gpt-4o",
            "input_tokens": "10",
            "output_tokens": "2",
            "cost_usd": "0.5",
            "latency_ms": "120",
            "timestamp": "2024-05-01T10:00:00Z",
            LINE: 2,
        }
    ]


def test_line_numbers_count_physical_lines_with_quoted_newlines() -> None:
    data = (
        b"\xef\xbb\xbfmodel,timestamp,feature\n"
        b'a,2024-01-01,"multi\nline\nvalue"\n'
        b"b,2024-01-01,x\n"
        b"\n"
        b"c,2024-01-01\n"
        b"d,2024-01-01,x,extra\n"
        b'e,2024-01-01,"with ""quotes"", and comma"\n'
    )
    rows, errors, rejected = read(data)
    assert [(row["model"], row[LINE]) for row in rows] == [("a", 2), ("b", 5), ("e", 9)]
    assert rows[0]["feature"] == "multi\nline\nvalue"
    assert rows[2]["feature"] == 'with "quotes", and comma'
    assert errors == [
        (7, "expected 3 fields as in the header, found 2"),
        (8, "expected 3 fields as in the header, found 4"),
    ]
    assert rejected == 2


def test_crlf_semicolons_and_a_missing_final_newline() -> None:
    rows, errors, _ = read(b"model;timestamp;cost\r\ngpt-4o;2024-01-01;1,5\r\nx;2024-01-02;2")
    assert errors == []
    assert [(r["model"], r["cost_usd"], r[LINE]) for r in rows] == [
        ("gpt-4o", "1,5", 2),
        ("x", "2", 3),
    ]


def test_carriage_returns_inside_values_neither_split_records_nor_stop_the_file() -> None:
    data = (
        b"model,timestamp,feature\n"
        b'a,2024-01-01,"carriage\rreturn"\n'
        b"b,2024-01-01,x\n"
        b"c,2024-01-01,bare\rreturn\n"
        b"d,2024-01-01,y\n"
    )
    rows, errors, rejected = read(data)
    assert [(row["model"], row["feature"], row[LINE]) for row in rows] == [
        ("a", "carriage\rreturn", 2),
        ("b", "x", 3),
        ("d", "y", 5),
    ]
    assert [line for line, _ in errors] == [4] and rejected == 1
    assert "not quoted" in errors[0][1]


def test_unterminated_quote_at_the_end_is_reported_and_the_rest_kept() -> None:
    rows, errors, rejected = read(b'model,timestamp\na,2024-01-01\n"b,2024-01-01\nc,2024\n')
    assert [row["model"] for row in rows] == ["a"]
    assert errors == [(3, "unterminated quoted field")]
    assert rejected == 1


def test_invalid_utf8_rejects_only_that_row() -> None:
    rows, errors, _ = read(b"model,timestamp\nok,2024-01-01\nbad\xff\xfe,2024-01-01\nok2,2024\n")
    assert [row["model"] for row in rows] == ["ok", "ok2"]
    assert errors == [(3, "not valid UTF-8 text")]


def test_batches_split_large_files_and_keep_line_numbers() -> None:
    body = b"".join(b"m%d,2024-01-01\n" % i for i in range(2_500))
    rows, errors, _ = read(b"model,timestamp\n" + body, batch_rows=1_000)
    assert errors == []
    assert len(rows) == 2_500
    assert rows[-1] == {"model": "m2499", "timestamp": "2024-01-01", LINE: 2_501}


def test_header_without_timestamp_and_model_is_refused() -> None:
    with pytest.raises(UnreadableFile) as caught:
        read(b"foo,bar\n1,2\n")
    assert caught.value.details["columns"] == ["foo", "bar"]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"   \n\n"])
def test_empty_files_are_refused_as_empty(data: bytes) -> None:
    with pytest.raises(UnreadableFile) as caught:
        read_batches(io.BytesIO(data), None, batch_rows=10)
    assert caught.value.code == "empty_file"


@pytest.mark.parametrize(
    "data", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"PK\x03\x04\x14\x00", bytes(range(256)) * 4]
)
def test_binary_files_are_refused(data: bytes) -> None:
    with pytest.raises(UnreadableFile) as caught:
        read_batches(io.BytesIO(data), None, batch_rows=10)
    assert caught.value.code == "unsupported_format"


def test_detection_by_content() -> None:
    assert detect_format(b"timestamp,model\n") == "csv"
    assert detect_format(b'{"model": "x", "timestamp": 1}\n') == "jsonl"
    assert detect_format(b'{"resourceSpans": []}\n') == "otlp"
    assert detect_format(b'[{"request_id": "1"}]') == "litellm"
    assert (
        detect_format(b'{"request_id":"r","call_type":"acompletion","spend":1,"startTime":1}')
        == "litellm"
    )
    assert detect_format(b"request_id,call_type,spend,startTime,model\n") == "litellm"


def test_unknown_format_name_is_refused() -> None:
    with pytest.raises(UnreadableFile) as caught:
        read_batches(io.BytesIO(b"timestamp,model\n"), "xml", batch_rows=10)
    assert caught.value.code == "unsupported_format"
