"""The ledger on DuckDB and on ClickHouse (chDB): exact totals, identical answers, isolation,
re-upload dedup, re-pricing and erasure."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from apex.analytics.filters import ANALYSED_ROWS, EVERY_ROW, UsageFilter
from apex.analytics.ingest import SERVER_FAILURE_AFTER_COMMIT, UsageImporter
from apex.analytics.ledger import SqlLedger
from apex.analytics.ledger_core import ABANDONED_AFTER
from apex.analytics.normalize import LINE, Normalizer
from apex.analytics.pricing import ModelPrice, PriceCatalog, price_from_dict
from apex.analytics.results import UsagePeriod
from apex.analytics.row_values import as_int
from apex.analytics.schema import MAX_CALL_COST
from apex.analytics.upload_records import INTERRUPTED_AFTER_COMMIT, INTERRUPTED_BEFORE_COMMIT
from apex.analytics.uploads import UploadStatus
from apex.errors import BadRequest
from tests.support.agent_harness import run_workflow, supervisor
from tests.support.usage_files import import_bytes, make_usage_csv

CENT = Decimal("0.01")


def importer_for(ledger: SqlLedger) -> UsageImporter:
    return UsageImporter(ledger, PriceCatalog.load(), batch_rows=700)


async def test_totals_are_exact_to_the_cent_against_an_independent_sum(
    usage_ledger: SqlLedger,
) -> None:
    usage = make_usage_csv(3_000, seed=11, bad_every=97)
    status = import_bytes(importer_for(usage_ledger), "tenant-a", usage.data)
    assert status.state == "completed"
    assert (status.rows_accepted, status.rows_rejected) == (usage.good_rows, len(usage.bad_lines))
    assert [error.line for error in status.errors] == usage.bad_lines[:50]
    assert {(u.provider, u.model): u.rows for u in status.unpriced} == {
        ("acme", "house-model"): usage.unpriced
    }
    totals = await usage_ledger.totals("tenant-a")
    assert totals.cost_usd == usage.cost
    assert totals.cost_usd.quantize(CENT) == usage.cost.quantize(CENT)
    assert (totals.requests, totals.errors, totals.unpriced_requests) == (
        usage.good_rows,
        usage.errors,
        usage.unpriced,
    )
    by_model = await usage_ledger.by_model("tenant-a")
    assert sum((m.cost_usd for m in by_model), Decimal(0)) == usage.cost
    by_day = await usage_ledger.by_day("tenant-a")
    assert sum(d.requests for d in by_day) == usage.good_rows


async def test_token_percentiles_and_outliers_match_an_independent_count(
    usage_ledger: SqlLedger,
) -> None:
    """Group sizes that make every percentile fall between two calls, repeated token counts,
    and a few calls far above the rest: the percentiles are numpy's (the interpolation
    quantile_cont uses), the outliers those above the p95 rounded up, all counted here."""
    rng = np.random.default_rng(3)
    lines = ["timestamp,provider,model,feature,input_tokens,output_tokens,cost_usd"]
    calls: dict[str, list[tuple[int, int, Decimal]]] = {}
    for feature, size in (("tiny", 7), ("odd", 237), ("large", 1_001)):
        for index in range(size):
            tokens = (int(rng.integers(0, 400)), int(rng.integers(0, 60)))
            if index % 97 == 5:
                tokens = (tokens[0] * 40, tokens[1] * 40)
            cost = Decimal(int(rng.integers(0, 10**6))) / 10**6
            calls.setdefault(feature, []).append((*tokens, cost))
            stamp = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=len(lines))
            lines.append(
                f"{stamp.isoformat()},openai,gpt-4o,{feature},{tokens[0]},{tokens[1]},{cost}"
            )
    import_bytes(importer_for(usage_ledger), "tenant-a", "\n".join(lines).encode())
    for position, kind in enumerate(("input", "output")):
        groups = await usage_ledger.token_outliers("tenant-a", None, kind, 10)
        assert {g.feature for g in groups} == {"odd", "large"}  # "tiny" has too few calls
        for group in groups:
            rows = calls[group.feature]
            values = np.array([row[position] for row in rows])
            levels = np.percentile(values, [50, 95, 99], method="linear")
            threshold = math.ceil(round(float(levels[1]), 6))
            above = [row for row in rows if row[position] > threshold]
            assert (group.requests, group.max_tokens, group.threshold) == (
                len(rows),
                int(values.max()),
                threshold,
            )
            found = (group.p50_tokens, group.p95_tokens, group.p99_tokens)
            for value, expected in zip(found, levels, strict=True):
                assert value == pytest.approx(float(expected), rel=1e-12, abs=1e-9)
            assert (group.outlier_requests, group.outlier_tokens, group.outlier_cost_usd) == (
                len(above),
                sum(row[position] for row in above),
                sum((row[2] for row in above), Decimal(0)),
            )
    mix = {group.feature: group for group in await usage_ledger.by_model_feature("tenant-a")}
    assert mix.keys() == calls.keys()
    for feature, rows in calls.items():
        inputs = np.array([row[0] for row in rows])
        outputs = np.array([row[1] for row in rows])
        found = (mix[feature].p50_input_tokens, mix[feature].p50_output_tokens)
        found += (mix[feature].p95_output_tokens,)
        expected = (np.percentile(inputs, 50), *np.percentile(outputs, [50, 95]))
        for value, wanted in zip(found, expected, strict=True):
            assert value == pytest.approx(float(wanted), rel=1e-12, abs=1e-9), feature


async def _every_answer(
    ledger: SqlLedger, tenant: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
) -> dict:
    return {
        "summary": await ledger.summary(tenant, period, where=where),
        "by_tag": await ledger.by_tag(tenant, period, where=where),
        "by_model_feature": await ledger.by_model_feature(tenant, period, where=where),
        "latency": await ledger.latency_percentiles(tenant, period, where=where),
        "waste": await ledger.error_retry_waste(tenant, period, where=where),
        "duplicates": await ledger.duplicate_prompts(tenant, period, top=5, where=where),
        "prefixes": await ledger.shared_prefixes(tenant, period, where=where),
        "output_outliers": await ledger.token_outliers(tenant, period, "output", 10, where=where),
        "input_outliers": await ledger.token_outliers(tenant, period, "input", 10, where=where),
        "hours": await ledger.hour_of_day(tenant, period, where=where),
        "batchable": await ledger.batchable_share(tenant, period, where=where),
        "bounds": await ledger.period_bounds(tenant, where=where),
        "default_period": await ledger.default_period(tenant),
        "names": await ledger.names(tenant),
    }


@pytest.mark.parametrize(
    "period",
    [
        None,
        UsagePeriod(start=datetime(2024, 3, 5, tzinfo=UTC), end=datetime(2024, 3, 19, tzinfo=UTC)),
    ],
)
async def test_every_query_answers_identically_on_both_engines(
    usage_ledgers: list[SqlLedger], period: UsagePeriod | None
) -> None:
    usage = make_usage_csv(4_000, seed=5)
    answers = []
    for ledger in usage_ledgers:
        import_bytes(importer_for(ledger), "tenant-a", usage.data)
        answers.append(await _every_answer(ledger, "tenant-a", period))
    duckdb_answers, clickhouse_answers = answers
    for name, value in duckdb_answers.items():
        assert value == clickhouse_answers[name], name
    assert duckdb_answers["summary"].totals.requests > 0
    assert duckdb_answers["waste"].retry_requests >= 0
    assert duckdb_answers["duplicates"].duplicate_requests > 0
    assert len(duckdb_answers["hours"].hours) == 24


async def test_a_scope_narrows_every_read_identically_on_both_engines(
    usage_ledgers: list[SqlLedger],
) -> None:
    usage = make_usage_csv(4_000, seed=5)
    for ledger in usage_ledgers:
        import_bytes(importer_for(ledger), "tenant-a", usage.data)
    names = await usage_ledgers[0].names("tenant-a")
    model, provider = names[0].model, names[0].provider
    features = sorted({n.feature for n in names if n.feature})[:2]
    where = UsageFilter(models=(model,), providers=(provider,), features=tuple(features))
    answers = [await _every_answer(ledger, "tenant-a", None, where) for ledger in usage_ledgers]
    for name, value in answers[0].items():
        assert value == answers[1][name], name
    expected = [
        n for n in names if n.model == model and n.provider == provider and n.feature in features
    ]
    totals = answers[0]["summary"].totals
    assert totals.requests == sum(n.requests for n in expected) > 0
    assert {(m.provider, m.model) for m in answers[0]["summary"].by_model} == {(provider, model)}
    assert {f.feature for f in answers[0]["summary"].by_feature} == {n.feature for n in expected}
    everything = await usage_ledgers[0].totals("tenant-a")
    assert totals.requests < everything.requests


async def test_tenants_never_see_each_other(usage_ledger: SqlLedger) -> None:
    importer = importer_for(usage_ledger)
    first = make_usage_csv(500, seed=1)
    second = make_usage_csv(300, seed=2)
    import_bytes(importer, "tenant-a", first.data)
    import_bytes(importer, "tenant-b", second.data)
    a = await _every_answer(usage_ledger, "tenant-a", None)
    b = await _every_answer(usage_ledger, "tenant-b", None)
    assert a["summary"].totals.requests == first.good_rows
    assert b["summary"].totals.requests == second.good_rows
    assert b["summary"].totals.cost_usd == second.cost
    assert sum(m.requests for m in b["summary"].by_model) == second.good_rows
    assert b["duplicates"].requests == second.good_rows
    nobody = await _every_answer(usage_ledger, "tenant-c", None)
    assert nobody["summary"].totals.requests == 0 and nobody["summary"].by_model == []
    assert nobody["default_period"] is None and nobody["latency"].overall is None
    assert usage_ledger.delete_usage("tenant-a") == first.good_rows
    assert (await usage_ledger.totals("tenant-a")).requests == 0
    assert (await usage_ledger.totals("tenant-b")).cost_usd == second.cost
    assert usage_ledger.list_uploads("tenant-a") == []
    assert len(usage_ledger.list_uploads("tenant-b")) == 1


async def test_uploading_the_same_rows_again_never_double_counts(usage_ledger: SqlLedger) -> None:
    importer = importer_for(usage_ledger)
    usage = make_usage_csv(400, seed=3)
    lines = usage.data.decode().splitlines(keepends=True)
    header, body = lines[0], lines[1:]
    monday = (header + "".join(body[:250])).encode()
    tuesday = (header + "".join(body[150:])).encode()
    assert import_bytes(importer, "t", monday).rows_accepted == 250
    overlap = import_bytes(importer, "t", tuesday)
    assert (overlap.rows_accepted, overlap.rows_duplicate) == (150, 100)
    again = import_bytes(importer, "t", usage.data)
    assert (again.rows_accepted, again.rows_duplicate) == (0, 400)
    totals = await usage_ledger.totals("t")
    assert totals.requests == 400 and totals.cost_usd == usage.cost
    assert import_bytes(importer, "other", usage.data).rows_accepted == 400


async def test_a_price_override_reprices_catalog_rows_but_never_file_costs(
    usage_ledger: SqlLedger,
) -> None:
    importer = importer_for(usage_ledger)
    data = (
        b"timestamp,model,provider,input_tokens,output_tokens,cost_usd\n"
        b"2024-03-01T00:00:00Z,gpt-4o,openai,1000000,0,\n"
        b"2024-03-01T00:00:01Z,gpt-4o,openai,1000000,0,9.99\n"
        b"2024-03-01T00:00:02Z,house-model,acme,2000000,0,\n"
    )
    import_bytes(importer, "t", data)
    assert (await usage_ledger.totals("t")).cost_usd == Decimal("2.50") + Decimal("9.99")
    usage_ledger.save_price_override(
        "t",
        price_from_dict(
            {"id": "gpt-4o", "provider": "openai", "input": "1.00", "output": "4.00"}, source="user"
        ),
    )
    usage_ledger.save_price_override(
        "t",
        price_from_dict(
            {"id": "house-model", "provider": "acme", "input": "0.50", "output": "1"}, source="user"
        ),
    )
    assert usage_ledger.reprice("t", importer.catalog_for("t")) == 2
    totals = await usage_ledger.totals("t")
    assert totals.cost_usd == Decimal("1.00") + Decimal("9.99") + Decimal("1.00")
    assert totals.unpriced_requests == 0
    assert [p.id for p in usage_ledger.price_overrides("t")] == ["house-model", "gpt-4o"]
    assert usage_ledger.price_overrides("someone-else") == []
    assert usage_ledger.delete_price_override("t", "acme", "house-model")
    assert not usage_ledger.delete_price_override("t", "acme", "house-model")
    usage_ledger.reprice("t", importer.catalog_for("t"))
    assert (await usage_ledger.totals("t")).unpriced_requests == 1


class _FileSettingPrices(io.BytesIO):
    """A file that runs `meanwhile` when the import first reads its rows (after the format
    sniff, so after the import took the tenant's prices), as a PUT /api/usage/prices landing
    while a large file is read would."""

    def __init__(self, data: bytes, meanwhile: Callable[[], object]) -> None:
        super().__init__(data)
        self._meanwhile = meanwhile
        self._reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self._reads += 1
        if self._reads == 2:
            self._meanwhile()
        return super().read(size)


def _import_while(
    importer: UsageImporter, tenant_id: str, data: bytes, meanwhile: Callable[[], object]
) -> UploadStatus:
    status = importer.start(tenant_id, filename="usage.csv", fmt="csv", bytes_total=len(data))
    return importer.import_stream(status, _FileSettingPrices(data, meanwhile))


async def test_a_price_changed_while_a_file_is_read_applies_to_that_files_rows(
    usage_ledger: SqlLedger,
) -> None:
    importer = importer_for(usage_ledger)
    header = b"timestamp,model,provider,input_tokens,output_tokens,cost_usd\n"
    import_bytes(importer, "t", header + b"2024-03-01T00:00:00Z,gpt-4o,openai,1000000,0,\n")
    repriced: list[int] = []

    def set_prices() -> None:
        repriced.append(
            importer.set_price(
                "t",
                price_from_dict(
                    {"id": "gpt-4o", "provider": "openai", "input": "1.00", "output": "4.00"},
                    source="user",
                ),
            )
        )
        repriced.append(
            importer.set_price(
                "t",
                price_from_dict(
                    {"id": "house-model", "provider": "acme", "input": "0.50", "output": "1"},
                    source="user",
                ),
            )
        )

    second = _import_while(
        importer,
        "t",
        header
        + (
            b"2024-03-02T00:00:00Z,gpt-4o,openai,1000000,0,\n"
            b"2024-03-02T00:00:01Z,gpt-4o,openai,1000000,0,9.99\n"
            b"2024-03-02T00:00:02Z,house-model,acme,2000000,0,\n"
        ),
        set_prices,
    )
    assert repriced == [1, 0]  # the earlier upload's gpt-4o row; no house-model row yet
    assert second.rows_accepted == 3 and second.unpriced == []
    totals = await usage_ledger.totals("t")
    assert totals.cost_usd == Decimal("1.00") * 3 + Decimal("9.99")
    assert totals.unpriced_requests == 0

    third = _import_while(
        importer,
        "t",
        header
        + (
            b"2024-03-03T00:00:00Z,house-model,acme,2000000,0,\n"
            b"2024-03-03T00:00:01Z,gpt-4o,openai,1000000,0,\n"
        ),
        lambda: importer.remove_price("t", "acme", "house-model"),
    )
    assert [(u.provider, u.model, u.rows) for u in third.unpriced] == [("acme", "house-model", 1)]
    totals = await usage_ledger.totals("t")
    # gpt-4o at 1.00 in each upload; both house-model rows are unpriced again
    assert totals.cost_usd == Decimal("1.00") * 3 + Decimal("9.99")
    assert totals.unpriced_requests == 2
    assert not importer.remove_price("t", "acme", "house-model")


class _Stopped(Exception):
    """The server stopping in the middle of a write: nothing after it runs."""


def _stop_repricing(ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the ledger stops where a re-pricing would first update rows."""

    def update(*_: object) -> None:
        raise _Stopped

    monkeypatch.setattr(ledger, "_reprice_rows", update)


async def _cost(ledger: SqlLedger, tenant_id: str) -> tuple[Decimal, int]:
    totals = await ledger.totals(tenant_id)
    return totals.cost_usd, totals.unpriced_requests


async def test_a_repricing_a_stop_cut_short_is_finished_by_the_next_one_or_at_start(
    usage_ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A price saved and its rows not yet re-priced when the server stops: they would keep
    the replaced price for good. The tenant's next price change re-prices all its rows, and
    so does the next start (`finish_interrupted_repricing`)."""
    # ClickHouse leaves marks alone until they are ABANDONED_AFTER old (another server may
    # still be re-pricing); the embedded ledger finishes every mark
    monkeypatch.setattr(usage_ledger, "abandoned_after", timedelta(0))
    importer = importer_for(usage_ledger)
    header = b"timestamp,model,provider,input_tokens,output_tokens\n"
    import_bytes(
        importer,
        "t",
        header + b"2024-03-01T00:00:00Z,gpt-4o,openai,1000000,0\n"
        b"2024-03-01T00:00:01Z,house-model,acme,1000000,0\n",
    )
    import_bytes(importer, "other", header + b"2024-03-01T00:00:00Z,gpt-4o,openai,1000000,0\n")
    update = usage_ledger._reprice_rows
    assert await _cost(usage_ledger, "t") == (Decimal("2.50"), 1)

    def price(model: str, provider: str, per_million: str) -> ModelPrice:
        return price_from_dict(
            {"id": model, "provider": provider, "input": per_million, "output": "1"}, source="user"
        )

    _stop_repricing(usage_ledger, monkeypatch)
    with pytest.raises(_Stopped):
        importer.set_price("t", price("gpt-4o", "openai", "1.00"))
    assert [p.id for p in usage_ledger.price_overrides("t")] == ["gpt-4o"]
    assert await _cost(usage_ledger, "t") == (Decimal("2.50"), 1)  # the replaced price
    assert usage_ledger.interrupted_repricing() == ["t"]

    # the next price change re-prices every row of the tenant, not only house-model's
    monkeypatch.setattr(usage_ledger, "_reprice_rows", update)
    assert importer.set_price("t", price("house-model", "acme", "0.50")) == 2
    assert await _cost(usage_ledger, "t") == (Decimal("1.50"), 0)
    assert usage_ledger.interrupted_repricing() == []

    _stop_repricing(usage_ledger, monkeypatch)
    with pytest.raises(_Stopped):
        importer.remove_price("t", "openai", "gpt-4o")
    monkeypatch.setattr(usage_ledger, "_reprice_rows", update)
    assert await _cost(usage_ledger, "t") == (Decimal("1.50"), 0)
    assert importer.finish_interrupted_repricing() == ["t"]
    assert await _cost(usage_ledger, "t") == (Decimal("3.00"), 0)
    assert importer.finish_interrupted_repricing() == []

    # a commit whose upload needs re-pricing (a price set while the file was read) stops
    # after its insert: its rows are in, at the price they were read with, until the start
    def set_price_then_stop() -> None:
        importer.set_price("t", price("gpt-4o", "openai", "2.00"))
        _stop_repricing(usage_ledger, monkeypatch)

    with pytest.raises(_Stopped):
        _import_while(
            importer,
            "t",
            header + b"2024-03-02T00:00:00Z,gpt-4o,openai,1000000,0\n",
            set_price_then_stop,
        )
    monkeypatch.setattr(usage_ledger, "_reprice_rows", update)
    record = usage_ledger.list_uploads("t")[0]  # its rows are in: not "nothing was kept"
    assert (record.state, record.rows_accepted, record.message) == (
        "completed",
        1,
        SERVER_FAILURE_AFTER_COMMIT,
    )
    assert await _cost(usage_ledger, "t") == (
        Decimal("2.00") + Decimal("0.50") + Decimal("2.50"),
        0,
    )
    assert importer.finish_interrupted_repricing() == ["t"]
    assert await _cost(usage_ledger, "t") == (Decimal("2.00") * 2 + Decimal("0.50"), 0)
    assert await _cost(usage_ledger, "other") == (Decimal("2.50"), 0)


_KILLED_MID_REPRICING = """
import os, sys
from pathlib import Path
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger_duckdb import DuckDBLedger
from apex.analytics.pricing import PriceCatalog, price_from_dict
from tests.support.usage_files import import_bytes

ledger = DuckDBLedger(Path(sys.argv[1]))
importer = UsageImporter(ledger, PriceCatalog.load())
import_bytes(importer, "t", b"timestamp,model,provider,input_tokens,output_tokens\\n"
                            b"2024-03-01T00:00:00Z,gpt-4o,openai,1000000,0\\n")
ledger._reprice_rows = lambda *_: os._exit(3)  # killed: no close, no cleanup, no flush
importer.set_price("t", price_from_dict(
    {"id": "gpt-4o", "provider": "openai", "input": "1.00", "output": "4.00"}, source="user"))
"""


async def test_a_server_killed_while_repricing_finishes_it_when_it_starts_again(
    make_settings: Callable[..., Any],
) -> None:
    """A process that dies between saving a price and re-pricing the rows (the embedded
    ledger, a real process exit): the next server start re-prices them before it serves."""
    from tests.support.asgi import running_app

    settings = make_settings()
    settings.ledger_path.parent.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    child = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _KILLED_MID_REPRICING, str(settings.ledger_path)],
        check=False,
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root / 'src'}:{root}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 3, child.stderr
    async with running_app(settings) as (app, _client):
        ledger = app.state.ledger
        assert [p.id for p in ledger.price_overrides("t")] == ["gpt-4o"]
        assert await _cost(ledger, "t") == (Decimal("1.00"), 0)
        assert ledger.interrupted_repricing() == []


def test_a_replaced_price_is_never_lost_to_a_failure_in_between(
    usage_ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A price is replaced by inserting the new one, then deleting the earlier: a failure
    (or a stop) after the insert leaves both and the newer one counts; one before it leaves
    the earlier one. Never none, on ClickHouse (no transactions) as on DuckDB."""

    def price(per_million: str) -> ModelPrice:
        return price_from_dict(
            {"id": "gpt-4o", "provider": "openai", "input": per_million, "output": "4"},
            source="user",
        )

    def stored() -> int:
        return as_int(
            usage_ledger._rows(f"SELECT count(*) FROM {usage_ledger._table('price_overrides')}")[0][
                0
            ]
        )

    usage_ledger.save_price_override("t", price("1"))
    usage_ledger.save_price_override("other", price("7"))
    command, delete = usage_ledger._command, usage_ledger._delete

    def refuse(*_: object) -> None:
        raise _Stopped

    monkeypatch.setattr(usage_ledger, "_delete", refuse)  # the new price is in, the old stays
    with pytest.raises(_Stopped):
        usage_ledger.save_price_override("t", price("2"))
    assert stored() == 3
    assert [(p.id, p.input) for p in usage_ledger.price_overrides("t")] == [("gpt-4o", 2)]

    monkeypatch.setattr(usage_ledger, "_delete", delete)
    monkeypatch.setattr(usage_ledger, "_command", refuse)  # the insert of the new one fails
    with pytest.raises(_Stopped):
        usage_ledger.save_price_override("t", price("3"))
    monkeypatch.setattr(usage_ledger, "_command", command)
    assert [(p.id, p.input) for p in usage_ledger.price_overrides("t")] == [("gpt-4o", 2)]

    usage_ledger.save_price_override("t", price("4"))  # a later save clears what was left
    assert stored() == 2
    assert [(p.id, p.input) for p in usage_ledger.price_overrides("t")] == [("gpt-4o", 4)]
    assert [(p.id, p.input) for p in usage_ledger.price_overrides("other")] == [("gpt-4o", 7)]

    # saved by a server whose clock is an hour ahead, then replaced here: the newer still wins
    ahead = datetime.now(UTC) + timedelta(hours=1)
    bind = usage_ledger._binder()
    usage_ledger._command(
        bind.statement(
            usage_ledger._update_statement(
                "price_overrides", f"saved_at = {bind(ahead)}", "tenant_id = 't'"
            )
        )
    )
    usage_ledger.save_price_override("t", price("5"))
    assert [(p.id, p.input) for p in usage_ledger.price_overrides("t")] == [("gpt-4o", 5)]
    assert stored() == 2


def test_a_ledger_from_before_saved_prices_were_dated_gets_the_column(tmp_path: Path) -> None:
    """`price_overrides.saved_at` came after the table: a ledger file created without it
    gets it when it opens, and the prices already saved keep counting until replaced."""
    import duckdb

    from apex.analytics.ledger_duckdb import DuckDBLedger

    path = tmp_path / "ledger.duckdb"
    earlier = duckdb.connect(str(path))
    earlier.execute(
        "CREATE TABLE price_overrides (tenant_id VARCHAR NOT NULL, provider VARCHAR "
        "NOT NULL, model VARCHAR NOT NULL, document VARCHAR NOT NULL)"
    )
    earlier.execute(
        "INSERT INTO price_overrides VALUES ('t', 'openai', 'gpt-4o', ?)",
        [json.dumps({"id": "gpt-4o", "provider": "openai", "input": "1", "output": "4"})],
    )
    earlier.close()
    ledger = DuckDBLedger(path)
    try:
        assert [(p.id, p.input) for p in ledger.price_overrides("t")] == [("gpt-4o", 1)]
        ledger.save_price_override(
            "t",
            price_from_dict(
                {"id": "gpt-4o", "provider": "openai", "input": "2", "output": "4"}, source="user"
            ),
        )
        assert [(p.id, p.input) for p in ledger.price_overrides("t")] == [("gpt-4o", 2)]
        assert ledger._rows("SELECT count(*) FROM price_overrides")[0][0] == 1
    finally:
        ledger.close()


async def test_a_price_that_would_take_a_call_past_the_ledgers_ceiling_is_refused(
    usage_ledger: SqlLedger,
) -> None:
    """An unknown model's rows are kept unpriced whatever their token counts, so a price set
    later can make one call cost more than the ledger holds: it is refused, nothing changes."""
    importer = importer_for(usage_ledger)
    set_price = importer.set_price
    import_bytes(
        importer,
        "t",
        (
            b"timestamp,model,provider,input_tokens,output_tokens\n"
            b"2024-03-01T00:00:00Z,house-model,acme,800000000000,0\n"
            b"2024-03-01T00:00:01Z,house-model,acme,1000000,0\n"
            b"2024-03-01T00:00:02Z,gpt-4o,openai,1000000,0\n"
        ),
    )
    with pytest.raises(BadRequest) as refused:
        set_price(
            "t",
            price_from_dict(
                {"id": "house-model", "provider": "acme", "input": "1.25", "output": "1"},
                source="user",
            ),
        )
    assert refused.value.code == "price_too_high"
    assert refused.value.details == {"calls": 1, "max_call_cost_usd": MAX_CALL_COST}
    assert usage_ledger.price_overrides("t") == []
    assert (await usage_ledger.totals("t")).unpriced_requests == 2

    # $1.24 a million: the large call costs $992,000, under the ceiling
    assert (
        set_price(
            "t",
            price_from_dict(
                {"id": "house-model", "provider": "acme", "input": "1.24", "output": "1"},
                source="user",
            ),
        )
        == 2
    )
    totals = await usage_ledger.totals("t")
    assert totals.cost_usd == Decimal("992000") + Decimal("1.24") + Decimal("2.50")
    assert totals.unpriced_requests == 0

    # gpt-4o imported at a tiny price of the tenant's own; at the catalog's $2.50 a million
    # its 400bn-token call would cost $1,000,000, so removing that price is refused
    set_price(
        "t",
        price_from_dict(
            {"id": "gpt-4o", "provider": "openai", "input": "0.001", "output": "1"}, source="user"
        ),
    )
    import_bytes(
        importer,
        "t",
        b"timestamp,model,provider,input_tokens,output_tokens\n"
        b"2024-03-02T00:00:00Z,gpt-4o,openai,400000000000,0\n",
    )
    with pytest.raises(BadRequest) as refused:
        importer.remove_price("t", "openai", "gpt-4o")
    assert refused.value.details == {"calls": 1, "max_call_cost_usd": MAX_CALL_COST}
    assert len(usage_ledger.price_overrides("t")) == 2
    before = await usage_ledger.totals("t")
    assert before.cost_usd == Decimal("992000") + Decimal("1.24") + Decimal("0.001") + 400

    # re-pricing itself never fails on such a row: past the ceiling it is left unpriced
    assert usage_ledger.reprice("t", importer.catalog) == 4
    after = await usage_ledger.totals("t")
    assert after.cost_usd == Decimal("2.50") and after.unpriced_requests == 3


async def test_upload_records_are_scoped_and_periods_filter(usage_ledger: SqlLedger) -> None:
    importer = importer_for(usage_ledger)
    usage = make_usage_csv(200, seed=8)
    status = import_bytes(importer, "t", usage.data, filename="march.csv")
    saved = usage_ledger.get_upload("t", status.upload_id)
    assert saved is not None and saved.model_dump(mode="json") == status.model_dump(mode="json")
    assert usage_ledger.get_upload("intruder", status.upload_id) is None
    assert importer.status("intruder", status.upload_id) is None
    bounds = await usage_ledger.period_bounds("t")
    assert bounds.first_timestamp == status.period.start
    assert bounds.last_timestamp == status.period.end
    period = await usage_ledger.default_period("t")
    assert period is not None and period.end - period.start == timedelta(days=30)
    assert period.end > bounds.last_timestamp
    early = UsagePeriod(
        start=datetime(2024, 3, 1, tzinfo=UTC), end=datetime(2024, 3, 10, tzinfo=UTC)
    )
    days = await usage_ledger.by_day("t", early)
    assert days and all(day.day.day < 10 for day in days)
    assert (await usage_ledger.totals("t", early)).requests == sum(d.requests for d in days)


def test_recent_tenants_are_listed_by_their_latest_completed_upload(
    usage_ledger: SqlLedger,
) -> None:
    importer = importer_for(usage_ledger)
    for tenant, seed in (("first", 1), ("second", 2), ("third", 3), ("first", 4)):
        import_bytes(importer, tenant, make_usage_csv(50, seed=seed).data)
    importer.start("unfinished", filename="usage.csv", fmt="csv")
    assert usage_ledger.recent_tenants(10) == ["first", "third", "second"]
    assert usage_ledger.recent_tenants(2) == ["first", "third"]
    usage_ledger.delete_usage("third")
    assert usage_ledger.recent_tenants(10) == ["first", "second"]


def test_uploads_a_stop_cut_short_are_settled_by_whether_their_rows_landed(
    usage_ledger: SqlLedger,
) -> None:
    importer = importer_for(usage_ledger)
    kept = import_bytes(importer, "t", make_usage_csv(120, seed=21).data, filename="kept.csv")
    landed = import_bytes(importer, "t", make_usage_csv(80, seed=22).data, filename="landed.csv")
    # the commit landed, the final report did not: the record still says what it said mid-file
    usage_ledger.save_upload(landed.model_copy(update={"state": "processing", "rows_accepted": 0}))
    cut = importer.start("t", filename="cut.csv", fmt="csv")
    other = importer.start("other tenant", filename="cut.csv", fmt="csv")
    requests = usage_ledger._totals("t", None).requests

    settled = usage_ledger.settle_interrupted_uploads()

    assert sorted(status.upload_id for status in settled) == sorted(
        [landed.upload_id, cut.upload_id, other.upload_id]
    )
    after_commit = usage_ledger.get_upload("t", landed.upload_id)
    assert after_commit is not None and after_commit.state == "completed"
    assert after_commit.rows_accepted == landed.rows_accepted > 0
    assert after_commit.message == INTERRUPTED_AFTER_COMMIT
    for tenant, status in (("t", cut), ("other tenant", other)):
        failed = usage_ledger.get_upload(tenant, status.upload_id)
        assert failed is not None and failed.state == "failed"
        assert failed.message == INTERRUPTED_BEFORE_COMMIT
    unchanged = usage_ledger.get_upload("t", kept.upload_id)
    assert unchanged is not None
    assert unchanged.model_dump(mode="json") == kept.model_dump(mode="json")
    assert usage_ledger._totals("t", None).requests == requests
    assert usage_ledger.settle_interrupted_uploads() == []


def test_an_upload_whose_record_went_quiet_is_settled_when_read(
    usage_ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where several processes share the ledger (ClickHouse), only silence tells that the
    process running an import is gone (15 minutes of it; one second here)."""
    assert usage_ledger.abandoned_after == ABANDONED_AFTER == timedelta(minutes=15)
    monkeypatch.setattr(usage_ledger, "abandoned_after", timedelta(seconds=1))
    importer = importer_for(usage_ledger)
    gone = importer.start("t", filename="gone.csv", fmt="csv")
    time.sleep(1.2)
    running = importer.start("t", filename="running.csv", fmt="csv")

    listed = {status.upload_id: status.state for status in usage_ledger.list_uploads("t")}
    assert listed == {running.upload_id: "processing", gone.upload_id: "failed"}
    settled = usage_ledger.get_upload("t", gone.upload_id)
    assert settled is not None and settled.state == "failed"
    assert settled.message == INTERRUPTED_BEFORE_COMMIT and settled.updated_at > gone.updated_at
    still = usage_ledger.get_upload("t", running.upload_id)
    assert still is not None and still.state == "processing"


def test_a_demo_load_replaces_earlier_demo_uploads_when_it_commits(usage_ledger: SqlLedger) -> None:
    """The earlier demo uploads stay while a new load runs and when it fails; its own record
    is listed throughout (erasing it with them hid the running load and lost it to a crash)."""
    from apex.analytics.demo import DemoWorkload

    importer = importer_for(usage_ledger)
    earlier = importer.import_demo(
        importer.start("t", filename="demo", fmt="demo", upload_id="demo_earlier"),
        DemoWorkload(500, seed=3),
    )
    other = importer.import_demo(
        importer.start("u", filename="demo", fmt="demo", upload_id="demo_other"),
        DemoWorkload(300, seed=4),
    )
    csv = import_bytes(importer, "t", make_usage_csv(40, seed=5).data)
    seen_while_running: list[tuple[str, str]] = []
    rows_while_running: list[int] = []

    class Watched(DemoWorkload):
        def __init__(self, rows: int, seed: int, *, fail: bool = False) -> None:
            super().__init__(rows, seed)
            self.fail = fail

        def chunks(self):  # type: ignore[no-untyped-def]
            for chunk in super().chunks():
                seen_while_running.extend(
                    (status.upload_id, status.state) for status in usage_ledger.list_uploads("t")
                )
                rows_while_running.append(usage_ledger._totals("t", None).requests)
                if self.fail:
                    raise OSError("the disk is full")
                yield chunk

    with pytest.raises(OSError):
        importer.import_demo(
            importer.start("t", filename="demo", fmt="demo", upload_id="demo_failed"),
            Watched(200, seed=6, fail=True),
        )
    assert ("demo_failed", "processing") in seen_while_running
    assert usage_ledger.get_upload("t", "demo_failed").state == "failed"  # type: ignore[union-attr]
    assert usage_ledger._totals("t", None).requests == 500 + csv.rows_accepted

    seen_while_running.clear()
    latest = importer.import_demo(
        importer.start("t", filename="demo", fmt="demo", upload_id="demo_latest"),
        Watched(200, seed=6),
    )

    assert earlier.rows_accepted == 500 and latest.rows_accepted == 200
    assert ("demo_latest", "processing") in seen_while_running
    assert ("demo_earlier", "completed") in seen_while_running
    assert set(rows_while_running) == {500 + csv.rows_accepted}
    assert {status.upload_id for status in usage_ledger.list_uploads("t")} == {
        "demo_latest",
        csv.upload_id,
    }
    assert usage_ledger._totals("t", None).requests == 200 + csv.rows_accepted
    assert usage_ledger.get_upload("u", "demo_other") is not None
    assert usage_ledger._totals("u", None).requests == other.rows_accepted == 300


async def test_a_reopened_ledger_prepares_the_answers_of_its_latest_tenants(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from apex.analytics.ledger_duckdb import DuckDBLedger

    path = tmp_path / "reopened.duckdb"
    ledger = DuckDBLedger(path)
    try:
        importer = importer_for(ledger)
        import_bytes(importer, "earlier", make_usage_csv(200, seed=6).data)
        import_bytes(importer, "latest", make_usage_csv(200, seed=7).data)
    finally:
        ledger.close()
    ledger = DuckDBLedger(path)
    try:
        assert ledger.prepare_recent_answers_soon(0) is None
        thread = ledger.prepare_recent_answers_soon(1)
        assert thread is not None
        thread.join(30)
        assert ledger.answers is not None
        misses = ledger.answers.misses
        await ledger.summary("latest", await ledger.default_period("latest"))
        await ledger.error_retry_waste("latest", await ledger.default_period("latest"))
        assert ledger.answers.misses == misses
        await ledger.summary("earlier")
        assert ledger.answers.misses > misses
    finally:
        ledger.close()


async def test_stored_answers_follow_every_write_to_the_tenants_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from apex.analytics.ledger_duckdb import DuckDBLedger

    ledger = DuckDBLedger(tmp_path / "answers.duckdb")
    try:
        importer = importer_for(ledger)
        first, second = make_usage_csv(400, seed=3), make_usage_csv(300, seed=4)
        import_bytes(importer, "t", first.data)
        assert (await ledger.totals("t")).requests == first.good_rows
        assert (await ledger.totals("other")).requests == 0
        import_bytes(importer, "t", second.data)
        assert (await ledger.totals("t")).cost_usd == first.cost + second.cost
        ledger.save_price_override(
            "t",
            price_from_dict(
                {"id": "gpt-4o", "provider": "openai", "input": "1000", "output": "1000"},
                source="user",
            ),
        )
        before = (await ledger.totals("t")).cost_usd
        ledger.reprice("t", importer.catalog_for("t"))
        assert (await ledger.totals("t")).cost_usd != before
        ledger.delete_usage("t")
        assert (await ledger.totals("t")).requests == 0
    finally:
        ledger.close()


async def test_an_import_prepares_the_first_reads_in_the_background(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from apex.analytics.ledger_duckdb import DuckDBLedger

    ledger = DuckDBLedger(tmp_path / "prepared.duckdb")
    try:
        importer = importer_for(ledger)
        usage = make_usage_csv(500, seed=5)
        status = import_bytes(importer, "t", usage.data)
        assert status.state == "completed"
        ledger.wait_for_answers(30)
        assert ledger.answers is not None and len(ledger.answers) > 10
        misses = ledger.answers.misses
        period = await ledger.default_period("t")
        summary = await ledger.summary("t", period)
        await ledger.latency_percentiles("t", period, overall=False)
        await ledger.duplicate_prompts("t", period, top=0)
        await ledger.batchable_share("t", period)
        await ledger.summary("t")
        assert ledger.answers.misses == misses
        assert summary.totals.requests == usage.good_rows
        run = await run_workflow(supervisor(ledger), "t", "How can I cut my AI costs by 30%?")
        assert run.report["totals"]["requests"] == usage.good_rows
        assert ledger.answers.misses == misses, "a chat run read something not prepared"
    finally:
        ledger.close()


def test_the_same_file_uploaded_twice_at_once_counts_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    from apex.analytics.ledger_duckdb import DuckDBLedger

    ledger = DuckDBLedger(tmp_path / "racing.duckdb")
    try:
        importer = importer_for(ledger)
        usage, other = make_usage_csv(2_000, seed=8), make_usage_csv(1_500, seed=9)
        with ThreadPoolExecutor(3) as pool:
            results = list(
                pool.map(
                    lambda job: import_bytes(importer, job[0], job[1]),
                    [("t", usage.data), ("t", usage.data), ("someone-else", other.data)],
                )
            )
        assert sorted(s.rows_accepted for s in results[:2]) == [0, usage.good_rows]
        assert sorted(s.rows_duplicate for s in results[:2]) == [0, usage.good_rows]
        assert results[2].rows_accepted == other.good_rows
        totals = ledger._totals("t", None)
        assert (totals.requests, totals.cost_usd) == (usage.good_rows, usage.cost)
        assert ledger._totals("someone-else", None).requests == other.good_rows
    finally:
        ledger.close()


def test_a_failed_upload_leaves_no_rows_and_frees_the_tenant(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from apex.analytics.ledger_duckdb import DuckDBLedger

    ledger = DuckDBLedger(tmp_path / "failed.duckdb")
    try:
        usage = make_usage_csv(300, seed=10)
        writer = ledger.open_upload("t", "broken-upload")
        importer = importer_for(ledger)
        normalizer = Normalizer(importer.catalog_for("t").resolver(), threads=1)
        table = pacsv.read_csv(io.BytesIO(usage.data))
        raw = pa.table(
            {
                **{
                    name: table.column(name).cast(pa.string())
                    for name in ("Timestamp", "Model_Name")
                },
                LINE: pa.array(range(2, table.num_rows + 2), pa.int64()),
            }
        ).rename_columns(["timestamp", "model", LINE])
        writer.stage(normalizer.normalize(raw, tenant_id="t", upload_id="broken-upload").rows)
        normalizer.close()
        assert len(list(ledger.staging_dir.iterdir())) == 1
        writer.discard()
        assert ledger._totals("t", None).requests == 0
        assert list(ledger.staging_dir.iterdir()) == []
        status = import_bytes(importer, "t", usage.data)
        assert status.rows_accepted == usage.good_rows
        assert list(ledger.staging_dir.iterdir()) == []
    finally:
        ledger.close()


def test_an_upload_a_crash_cut_short_is_cleared_and_failed_when_the_ledger_opens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from apex.analytics.ledger_duckdb import DuckDBLedger

    ledger = DuckDBLedger(tmp_path / "crashed.duckdb")
    usage = make_usage_csv(200, seed=11)
    importer = importer_for(ledger)
    importer.start("t", filename="usage.csv", fmt="csv", upload_id="interrupted")
    writer = ledger.open_upload("t", "interrupted")
    normalizer = Normalizer(importer.catalog_for("t").resolver(), threads=1)
    table = pacsv.read_csv(io.BytesIO(usage.data))
    raw = pa.table(
        {
            "timestamp": table.column("Timestamp").cast(pa.string()),
            "model": table.column("Model_Name").cast(pa.string()),
            LINE: pa.array(range(2, table.num_rows + 2), pa.int64()),
        }
    )
    writer.stage(normalizer.normalize(raw, tenant_id="t", upload_id="interrupted").rows)
    normalizer.close()
    ledger.close()
    assert len(list(ledger.staging_dir.iterdir())) == 1
    reopened = DuckDBLedger(tmp_path / "crashed.duckdb")
    try:
        assert list(reopened.staging_dir.iterdir()) == []
        assert reopened._totals("t", None).requests == 0
        record = reopened.get_upload("t", "interrupted")
        assert record is not None and record.state == "failed"
    finally:
        reopened.close()


def test_closing_waits_for_a_call_in_flight_and_refuses_later_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    from apex.analytics.ledger_duckdb import DuckDBLedger, LedgerClosed

    ledger = DuckDBLedger(tmp_path / "closing.duckdb")
    started, answers = threading.Event(), []

    def long_call() -> None:  # what an upload's worker thread is doing when the server stops
        started.set()
        answers.extend(ledger._rows("SELECT count(*) FROM range(400000000) WHERE range % 7 = 0"))

    worker = threading.Thread(target=long_call)
    worker.start()
    started.wait(5)
    time.sleep(0.05)
    ledger.close()
    worker.join(30)
    assert answers == [(57142858,)]
    with pytest.raises(LedgerClosed):
        ledger.get_upload("t", "any")


async def test_reads_that_outgrow_the_memory_limit_together_run_again_one_at_a_time(
    tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    """At this limit each read fits alone and a dozen side by side do not (as a chat run's
    reads over millions of rows do not fit the default limit): none may fail for it."""
    import asyncio

    from apex.analytics.demo import DemoWorkload
    from apex.analytics.ledger_duckdb import DuckDBLedger

    path = tmp_path / "tight.duckdb"
    ledger = DuckDBLedger(path)
    try:
        importer = importer_for(ledger)
        importer.import_demo(
            importer.start("t", filename="demo", fmt="demo", upload_id="demo_1"),
            DemoWorkload(60_000, seed=5),
        )
    finally:
        ledger.close()
    ledger = DuckDBLedger(path, memory_limit_mb=28, threads=2)
    try:
        periods = [
            UsagePeriod(
                start=datetime(2000 + year, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC)
            )
            for year in range(4)
        ]

        def reads() -> list:  # type: ignore[type-arg]
            return [
                read
                for period in periods
                for read in (
                    ledger.latency_percentiles("t", period),
                    ledger.duplicate_prompts("t", period),
                    ledger.error_retry_waste("t", period),
                )
            ]

        together = await asyncio.gather(*reads())
        assert ledger.memory.retried > 0
        assert ledger.answers is not None
        ledger.answers.changed("t")
        alone = [await read for read in reads()]
        assert [answer.model_dump() for answer in together] == [
            answer.model_dump() for answer in alone
        ]
        assert alone[0].overall is not None and alone[0].overall.requests > 50_000
    finally:
        ledger.close()


async def test_the_platforms_own_calls_are_recorded_on_both_engines(
    usage_ledger: SqlLedger,
) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    calls = [
        {
            "timestamp": now + timedelta(seconds=i),
            "provider": "openai",
            "model": "gpt-4o-mini",
            "operation": "chat",
            "input_tokens": 900,
            "output_tokens": 40,
            "status": "ok",
            "feature": "apex",
            "tags": ["apex"],
            "request_id": f"apex-{i}",
        }
        for i in range(3)
    ]
    importer = importer_for(usage_ledger)
    assert await asyncio.to_thread(importer.record_calls, "tenant-m", calls[:2]) == 2
    assert await asyncio.to_thread(importer.record_calls, "tenant-m", calls[2:]) == 1
    names = await usage_ledger.names("tenant-m")
    assert [(n.feature, n.requests) for n in names] == [("apex", 3)]
    analysed = await usage_ledger.period_bounds("tenant-m", where=ANALYSED_ROWS)
    assert analysed.requests == 0 and analysed.last_timestamp is None
