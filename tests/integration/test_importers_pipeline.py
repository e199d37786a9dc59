"""Each format end to end into a real ledger: bad rows reported on their lines, good rows kept,
and hostile bytes never crash an import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apex.analytics.importers.base import UnreadableFile
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger_duckdb import DuckDBLedger
from apex.analytics.pricing import PriceCatalog
from tests.support.usage_files import import_bytes

BOM = b"\xef\xbb\xbf"


def _jsonl(*rows: object) -> bytes:
    return (
        BOM + "\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows).encode()
    )


def _span(model: object, tokens: object, start: str = "1714557600000000000") -> dict:
    return {
        "spanId": "s",
        "startTimeUnixNano": start,
        "endTimeUnixNano": start,
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": model}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": tokens}},
        ],
    }


def _otlp(*spans: dict) -> str:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]})


CASES = {
    "csv": (
        BOM + b"time,model,prompt_tokens,completion_tokens\n"
        b"2024-05-01T10:00:00+02:00,gpt-4o,10,1\n"
        b"2024-05-01,gpt-4o,-3,1\n"
        b"2024-05-01,gpt-4o,ten,1\n"
        b"05/01/2024 10:00,gpt-4o,1,1\n"
        b"1714557600,gpt-4o-mini,5,5\n",
        [3, 4, 5],
        2,
    ),
    "jsonl": (
        _jsonl(
            {"timestamp": "2024-05-01T10:00:00Z", "model": "gpt-4o", "input_tokens": 10},
            {"timestamp": "2024-05-01", "model": "gpt-4o", "input_tokens": -1},
            {"timestamp": "2024-05-01", "model": "gpt-4o", "input_tokens": {"x": 1}},
            "{broken",
            {"timestamp": "tomorrow", "model": "gpt-4o"},
            {"timestamp": 1714557600123, "model": ["gpt-4o"], "input_tokens": 3},
            {"timestamp": "2024-05-01 12:00:00 Europe/Paris", "model": "o3"},
        ),
        [2, 3, 4, 5],
        3,
    ),
    "otlp": (
        "\n".join(
            [
                _otlp(_span("gpt-4o", "10"), _span("gpt-4o", "-4")),
                _otlp(_span("gpt-4o", "many")),
                "[]",
            ]
        ).encode(),
        [1, 2, 3],
        1,
    ),
    "litellm": (
        json.dumps(
            [
                {
                    "request_id": "a",
                    "call_type": "acompletion",
                    "spend": 0.1,
                    "prompt_tokens": 4,
                    "completion_tokens": 1,
                    "startTime": "2024-05-01T10:00:00Z",
                    "model": "gpt-4o",
                },
                {
                    "request_id": "b",
                    "call_type": "acompletion",
                    "spend": "free",
                    "prompt_tokens": 4,
                    "startTime": "2024-05-01T10:00:00Z",
                    "model": "gpt-4o",
                },
                {
                    "request_id": "c",
                    "call_type": "aembedding",
                    "spend": 0,
                    "prompt_tokens": 9,
                    "startTime": "2024-05-01T11:00:00Z",
                    "model": "text-embedding-3-small",
                },
            ]
        ).encode(),
        [2],
        2,
    ),
}


@pytest.fixture
def importer(tmp_path: Path):  # type: ignore[no-untyped-def]
    ledger = DuckDBLedger(tmp_path / "ledger.duckdb", memory_limit_mb=128, threads=1)
    yield UsageImporter(ledger, PriceCatalog.load())
    ledger.close()


@pytest.mark.parametrize("fmt", sorted(CASES))
async def test_each_format_reports_bad_rows_by_line_and_keeps_the_rest(
    importer: UsageImporter, fmt: str
) -> None:
    data, bad_lines, good = CASES[fmt]
    status = import_bytes(importer, "tenant", data)
    assert status.format == fmt
    assert sorted({error.line for error in status.errors}) == bad_lines
    assert all(error.message for error in status.errors)
    assert status.rows_accepted == good
    totals = await importer.ledger.totals("tenant")
    assert totals.requests == good


def test_otlp_errors_name_the_field(importer: UsageImporter) -> None:
    data = CASES["otlp"][0]
    messages = [error.message for error in import_bytes(importer, "t", data).errors]
    assert any(message.startswith("input_tokens") for message in messages)


_CSV_PIECES = (b",", b'"', b"\n", b"\r", b"\r\n", b"a", b"1", b"\x00", b"\xff", b" ", b"2024-01-01")


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=2_000),
        st.lists(st.sampled_from(_CSV_PIECES), max_size=80).map(
            lambda pieces: b"timestamp,model,input_tokens\n" + b"".join(pieces)
        ),
        st.text(max_size=500).map(lambda text: ("timestamp,model,input_tokens\n" + text).encode()),
        st.text(max_size=500).map(
            lambda text: ('{"model": "x", "timestamp": 1}\n' + text).encode()
        ),
        st.text(max_size=300).map(lambda text: ('{"resourceSpans": [' + text).encode()),
    )
)
def test_hostile_bytes_never_crash_an_import(importer: UsageImporter, data: bytes) -> None:
    try:
        status = import_bytes(importer, "fuzz", data)
    except UnreadableFile:
        return
    assert status.state == "completed"
    assert status.rows_processed >= status.rows_accepted + status.rows_rejected - 1
