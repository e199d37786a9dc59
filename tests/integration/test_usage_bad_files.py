"""Files that cannot be priced or read say why: a total without its split, a legacy encoding,
a hostile nesting depth. None is booked wrongly, none answers 500, none stays `processing`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from apex.analytics.importers.base import UnreadableFile
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger_duckdb import DuckDBLedger
from apex.analytics.pricing import PriceCatalog
from tests.support.accounts import make_user
from tests.support.usage_files import import_bytes

DEPTH = 100_000


@pytest.fixture
def importer(tmp_path: Path) -> Iterator[UsageImporter]:
    ledger = DuckDBLedger(tmp_path / "usage.duckdb", memory_limit_mb=256, threads=1)
    yield UsageImporter(ledger, PriceCatalog.load())
    ledger.close()


def test_a_csv_with_only_total_tokens_is_refused_naming_the_columns_it_needs(
    importer: UsageImporter,
) -> None:
    data = b"timestamp,model,total_tokens\n2024-05-01T10:00:00Z,gpt-4o,1200\n"
    with pytest.raises(UnreadableFile) as raised:
        import_bytes(importer, "t", data)
    assert raised.value.code == "token_columns_missing"
    assert "input_tokens and output_tokens" in raised.value.message
    assert raised.value.details["needed"] == ["input_tokens", "output_tokens"]
    assert importer.ledger.list_uploads("t")[0].state == "failed"


def test_rows_with_only_a_total_are_each_refused_and_never_booked_as_output(
    importer: UsageImporter,
) -> None:
    rows = [
        {"timestamp": "2024-05-01T10:00:00Z", "model": "gpt-4o", "total_tokens": 1200},
        {
            "timestamp": "2024-05-01T10:00:01Z",
            "model": "gpt-4o",
            "input_tokens": 1000,
            "total_tokens": 1200,
        },
        {
            "timestamp": "2024-05-01T10:00:02Z",
            "model": "gpt-4o",
            "output_tokens": 200,
            "total_tokens": 1200,
        },
    ]
    data = "\n".join(json.dumps(row) for row in rows).encode()
    status = import_bytes(importer, "t", data)
    assert status.rows_accepted == 2
    assert [error.line for error in status.errors] == [1]
    assert "input_tokens and output_tokens" in status.errors[0].message
    # the two rows with a split: 1,000 input and 200 output tokens each, derived from the total
    totals = asyncio.run(importer.ledger.totals("t"))
    assert (totals.input_tokens, totals.output_tokens) == (2_000, 400)
    assert (
        totals.cost_usd
        == 2 * (Decimal(1_000) * Decimal("2.50") + Decimal(200) * Decimal("10.00")) / 1_000_000
    )


FEATURES = ["café crème", "résumé naïve", "Straße Übersicht"]


def _csv_text() -> str:
    return "timestamp,model,feature,input_tokens,output_tokens\n" + "".join(
        f"2024-05-01T10:00:0{index}Z,gpt-4o,{feature},10,1\n"
        for index, feature in enumerate(FEATURES)
    )


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16", "utf-16-le"])
def test_a_file_in_a_legacy_encoding_is_read_as_what_it_says(
    importer: UsageImporter, encoding: str
) -> None:
    data = _csv_text().encode(encoding)
    if encoding == "utf-16-le":
        data = b"\xff\xfe" + data
    status = import_bytes(importer, "t", data)
    assert (status.state, status.rows_accepted, status.errors) == ("completed", 3, [])
    features = asyncio.run(importer.ledger.by_feature("t"))
    assert sorted(f.feature for f in features) == sorted(FEATURES)


def test_a_file_whose_encoding_is_not_recognised_is_refused_with_how_to_resave_it(
    importer: UsageImporter,
) -> None:
    data = b"timestamp,model\n" + (b"\xff\xfe\xfd\x80\x81" * 8 + b"\n") * 5
    with pytest.raises(UnreadableFile) as raised:
        import_bytes(importer, "t", data)
    assert raised.value.code == "unsupported_encoding"
    assert "Re-save it as UTF-8" in raised.value.message


def test_a_file_that_stops_decoding_is_refused_naming_its_encoding(importer: UsageImporter) -> None:
    head = _csv_text().encode("cp1252")
    body = head + head.split(b"\n", 1)[1] * 1_000  # beyond the sample the encoding is read from
    data = body + b"2024-05-01T10:00:00Z,gpt-4o,\x81\x8d,1,1\n"  # bytes Windows-1252 lacks
    with pytest.raises(UnreadableFile) as raised:
        import_bytes(importer, "t", data)
    assert raised.value.code == "unsupported_encoding"
    assert raised.value.details["encoding"] == "cp1252"
    assert "cp1252" in raised.value.message and "Re-save it as UTF-8" in raised.value.message


HOSTILE = {
    "object": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "array": b"[" * DEPTH + b"]" * DEPTH,
    "otlp": b'{"resourceSpans": ' + b"[" * DEPTH + b"]" * DEPTH + b"}",
}


@pytest.mark.parametrize("shape", list(HOSTILE))
def test_a_document_nested_a_hundred_thousand_deep_is_refused(
    importer: UsageImporter, shape: str
) -> None:
    with pytest.raises(UnreadableFile) as raised:
        import_bytes(importer, "t", HOSTILE[shape])
    assert raised.value.code in ("json_too_deep", "unreadable_file")
    upload = importer.ledger.list_uploads("t")[0]
    assert (upload.state, upload.message) == ("failed", raised.value.message)


def test_a_deep_line_among_good_ones_is_refused_on_its_line(importer: UsageImporter) -> None:
    good = json.dumps(
        {"timestamp": "2024-05-01T10:00:00Z", "model": "gpt-4o", "input_tokens": 10}
    ).encode()
    deep = b'{"model": ' + b"[" * DEPTH + b"]" * DEPTH + b"}"
    status = import_bytes(importer, "t", b"\n".join([good, deep, good.replace(b"10", b"11")]))
    assert status.rows_accepted == 2
    assert [error.line for error in status.errors] == [2]


async def _settled(
    client: httpx.AsyncClient, headers: dict[str, str], upload_id: str
) -> dict[str, object]:
    for _ in range(400):
        status = (await client.get(f"/api/usage/uploads/{upload_id}", headers=headers)).json()
        if status["state"] != "processing":
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"upload {upload_id} still processing")


@pytest.mark.parametrize("shape", list(HOSTILE))
async def test_a_hostile_document_answers_400_and_its_upload_is_failed(
    app: FastAPI, client: httpx.AsyncClient, shape: str
) -> None:
    _, headers = await make_user(app)
    files = {"file": ("usage.json", HOSTILE[shape], "application/json")}
    response = await client.post("/api/usage/uploads", headers=headers, files=files)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] and set(error) == {"code", "message", "details"}
    started = await client.post(
        "/api/usage/uploads", headers=headers, files=files, data={"wait": "false"}
    )
    assert started.status_code == 202
    status = await _settled(client, headers, started.json()["upload_id"])
    assert (status["state"], status["message"]) == ("failed", error["message"])


async def test_a_deep_price_body_is_refused_not_a_crash(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, headers = await make_user(app)
    response = await client.put(
        "/api/usage/prices/gpt-4o",
        content=HOSTILE["object"],
        headers={**headers, "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_json"


async def test_the_price_list_shows_cache_write_and_tier_prices(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, headers = await make_user(app)
    body = (await client.get("/api/usage/prices", headers=headers)).json()
    models = {m["id"]: m for m in body["models"]}
    assert body["as_of"]
    assert (models["claude-sonnet-4"]["cache_write"], models["gpt-4o"]["cache_write"]) == (
        3.75,
        None,
    )
    assert models["claude-sonnet-4"]["tiers"] == [
        {
            "above_input_tokens": 200_000,
            "input": 6.0,
            "output": 22.5,
            "cached_input": 0.6,
            "cache_write": 7.5,
        }
    ]
    for tiers in (
        "above 200k",
        [{"above_input_tokens": -1, "input": 1, "output": 1}],
        [{"above_input_tokens": 1000 * n, "input": 1, "output": 1} for n in range(1, 1000)],
    ):
        refused = await client.put(
            "/api/usage/prices/claude-sonnet-4",
            headers=headers,
            json={"input": 1, "output": 1, "tiers": tiers},
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_price"
    own = {
        "input": 4,
        "output": 20,
        "cache_write": 5,
        "tiers": [{"above_input_tokens": 100_000, "input": 8, "output": 30}],
    }
    saved = await client.put(
        "/api/usage/prices/claude-sonnet-4", headers=headers, json={**own, "provider": "anthropic"}
    )
    assert saved.status_code == 200
    body = (await client.get("/api/usage/prices", headers=headers)).json()
    mine = [m for m in body["models"] if m["id"] == "claude-sonnet-4" and m["source"] == "user"]
    assert [(m["cache_write"], m["tiers"][0]["above_input_tokens"]) for m in mine] == [
        (5.0, 100_000)
    ]


def test_one_stray_byte_in_a_utf8_file_refuses_only_its_line(importer: UsageImporter) -> None:
    data = _csv_text().encode() + b"2024-05-01T10:00:09Z,gpt-4o,bad \xff,10,1\n"
    status = import_bytes(importer, "t", data)
    assert status.rows_accepted == 3
    assert [(error.line, error.message) for error in status.errors] == [(5, "not valid UTF-8 text")]
