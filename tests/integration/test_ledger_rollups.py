"""The hourly rollups answer exactly what the rows answer: money, tokens, counts, errors and
bounds to the last digit, percentiles within the sketch's relative error; after uploads that
share hours, re-pricings and erasures; and a ledger file from before the rollups gets them built
in the background while its reads use the rows."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apex.analytics import rollups
from apex.analytics.filters import EVERY_ROW, UsageFilter
from apex.analytics.ledger import SqlLedger
from apex.analytics.ledger_duckdb import DuckDBLedger
from apex.analytics.pricing import PriceCatalog, price_from_dict
from apex.analytics.results import UsagePeriod
from apex.analytics.rollups import HOUR, ROLLUP_TABLES
from apex.analytics.schema import ARROW_SCHEMA
from apex.analytics.statement import Statement

START = datetime(2026, 3, 1, tzinfo=UTC)
ROUTES = (("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("acme", "house-model"))
FEATURES = ("chat", "search", "", "Nightly-Sync")
# what the ledger promises for a percentile read from the sketch (RELATIVE_ERROR, just under
# it, leaves room for the 6 decimals answers are rounded to)
PROMISED_ERROR = 0.01
PERCENTILE_FIELDS = {
    "p50_latency_ms",
    "p95_latency_ms",
    "p99_latency_ms",
    "p50_ttft_ms",
    "p95_ttft_ms",
}
_keys = itertools.count(1)
_tenants = itertools.count(1)

latencies = st.one_of(
    st.none(), st.just(0.0), st.floats(min_value=0.5, max_value=60_000, allow_nan=False)
)
rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "minute": st.integers(min_value=0, max_value=3 * 24 * 60),
            "second": st.integers(min_value=0, max_value=59),
            "route": st.sampled_from(ROUTES),
            "feature": st.sampled_from(FEATURES),
            "error": st.sampled_from(("", "", "", "rate_limit", "timeout")),
            "input": st.integers(min_value=0, max_value=300_000),
            "output": st.integers(min_value=0, max_value=5_000),
            "cost": st.one_of(
                st.none(),
                st.decimals(
                    min_value=0, max_value=50, places=12, allow_nan=False, allow_infinity=False
                ),
            ),
            "latency": latencies,
            "ttft": latencies,
            "prompt": st.sampled_from(("", "p1", "p2")),
            "tags": st.sampled_from(((), ("batch",), ("agent", "cron"), ("interactive",))),
            "end_user": st.sampled_from(("", "", "user-7")),
            "upload": st.integers(min_value=0, max_value=2),
        }
    ),
    min_size=1,
    max_size=60,
)


def _table(tenant: str, upload: str, rows: list[dict[str, Any]]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in ARROW_SCHEMA.names}
    for row in rows:
        provider, model = row["route"]
        priced = row["cost"] is not None
        values = {
            "tenant_id": tenant,
            "upload_id": upload,
            "row_key": row.setdefault("key", next(_keys)),
            "timestamp": (START + timedelta(minutes=row["minute"], seconds=row["second"])).replace(
                tzinfo=None
            ),
            "provider": provider,
            "model": model,
            "operation": "chat",
            "input_tokens": row["input"],
            "output_tokens": row["output"],
            "cached_input_tokens": row["input"] // 4,
            "cache_write_input_tokens": row["input"] // 8,
            "reasoning_tokens": row["output"] // 3,
            "cost_usd": row["cost"],
            "cost_source": "file"
            if priced and model != "house-model"
            else ("catalog" if priced else "unpriced"),
            "latency_ms": row["latency"],
            "ttft_ms": row["ttft"],
            "status": "error" if row["error"] else "ok",
            "error_type": row["error"],
            "feature": row["feature"],
            "tags": list(row["tags"]),
            "end_user": row["end_user"],
            "prompt_hash": row["prompt"],
            "prefix_hash": row["prompt"][:1],
            "prefix_tokens": 0,
            "request_id": "",
        }
        for name, value in values.items():
            columns[name].append(value)
    return pa.table(columns, schema=ARROW_SCHEMA)


def _load(ledger: SqlLedger, tenant: str, rows: list[dict[str, Any]], live: bool = False) -> None:
    """Each row into one of three uploads, committed one after another (they share hours).
    `live`: the last upload's rows are committed a few at a time, as live usage is, each
    commit into hours that mostly hold more rows than it brings (its figures are merged into
    theirs), and the first of them twice (the second time it is a duplicate)."""
    for upload in range(3):
        batch = [row for row in rows if row["upload"] == upload]
        commits = [batch[:1], *(batch[i : i + 2] for i in range(0, len(batch), 2))]
        for part in commits if live and upload == 2 else [batch]:
            if part:
                writer = ledger.open_upload(tenant, f"up-{upload}")
                writer.stage(_table(tenant, f"up-{upload}", part))
                writer.commit()


def _answers(
    ledger: SqlLedger, tenant: str, period: UsagePeriod | None, where: UsageFilter
) -> dict[str, Any]:
    return {
        "summary": ledger._summary(tenant, period, where).model_dump(),
        "latency": ledger._latency_percentiles(tenant, period, True, where).model_dump(),
        "errors": ledger._error_retry_waste(tenant, period, where).model_dump()["errors"],
        "mix": [m.model_dump() for m in ledger._by_model_feature(tenant, period, where)],
        "duplicates": ledger._duplicate_prompts(tenant, period, 3, where).model_dump(),
        "coverage": ledger._coverage(tenant, period, where).model_dump(),
        "bounds": ledger._period_bounds(tenant, where).model_dump(),
        "names": [n.model_dump() for n in ledger._names(tenant)],
        "hours": ledger._hour_of_day(tenant, period, where).model_dump(),
        "batchable": ledger._batchable_share(tenant, period, where).model_dump(),
    }


def _split(value: Any, path: str, percentiles: dict[str, float | None]) -> Any:
    """`value` without its percentile fields, which go to `percentiles` by path."""
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            if key in PERCENTILE_FIELDS:
                percentiles[f"{path}.{key}"] = item
            else:
                kept[key] = _split(item, f"{path}.{key}", percentiles)
        return kept
    if isinstance(value, list):
        return [_split(item, f"{path}[{index}]", percentiles) for index, item in enumerate(value)]
    return value


def _latency_groups_in_order(answer: dict[str, Any]) -> dict[str, Any]:
    """The latency groups ordered by name: their p95 order may swap where two p95s are within
    the sketch's error of each other."""
    groups = sorted(
        answer["latency"]["groups"], key=lambda g: (g["provider"], g["model"], g["feature"])
    )
    return {**answer, "latency": {**answer["latency"], "groups": groups}}


def assert_rollups_answer_as_the_rows(
    ledger: SqlLedger, tenant: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
) -> None:
    assert ledger.answers is not None
    ledger.answers.clear()
    ledger.serve_from_rollups = False
    exact = _latency_groups_in_order(_answers(ledger, tenant, period, where))
    ledger.answers.clear()
    ledger.serve_from_rollups = True
    served = _latency_groups_in_order(_answers(ledger, tenant, period, where))
    exact_levels: dict[str, float | None] = {}
    served_levels: dict[str, float | None] = {}
    assert _split(served, "", served_levels) == _split(exact, "", exact_levels)
    assert served_levels.keys() == exact_levels.keys()
    for path, value in exact_levels.items():
        if value is None:
            assert served_levels[path] is None, path
        else:
            assert served_levels[path] is not None, path
            assert math.isclose(served_levels[path], value, rel_tol=PROMISED_ERROR, abs_tol=1e-6), (
                path,
                served_levels[path],
                value,
            )


def assert_repeats_are_the_prompts_answered_twice(
    ledger: SqlLedger, tenant: str, rows: list[dict[str, Any]]
) -> None:
    """The tenant's repeated prompt keys are those of the prompts of `rows` (the tenant's rows
    now) answered more than once, no more and no fewer, and their answered calls are copied,
    each once."""
    answered = Counter(row["prompt"] for row in rows if row["prompt"] and not row["error"])

    def keys(sql: str, **values: str) -> set[int]:
        return {row[0] for row in ledger._rows(Statement.of(sql, values))}

    expected = set().union(
        *(keys("SELECT hash($p)", p=prompt) for prompt, calls in answered.items() if calls > 1)
    )
    kept = keys("SELECT prompt_key FROM usage_prompt_repeats WHERE tenant_id = $t", t=tenant)
    assert kept == expected
    copied = ledger._rows(
        Statement.of(
            "SELECT prompt_hash, count(*) FROM usage_repeated_calls WHERE tenant_id = $t "
            "GROUP BY prompt_hash",
            {"t": tenant},
        )
    )
    assert dict(copied) == {prompt: calls for prompt, calls in answered.items() if calls > 1}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    opened = DuckDBLedger(tmp_path_factory.mktemp("rollups") / "ledger.duckdb")
    opened.wait_for_answers()
    opened.exact_percentiles_up_to = -1  # every percentile from the sketch
    yield opened
    opened.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rows=rows_strategy,
    edges=st.tuples(
        st.integers(min_value=-90, max_value=4 * 24 * 60),
        st.integers(min_value=1, max_value=4 * 24 * 60),
    ),
    house_price=st.sampled_from((None, "0.40", "3.00")),
    erase=st.sampled_from((None, "tenant", "upload")),
    narrowed=st.booleans(),
    live=st.booleans(),
)
def test_rollups_answer_as_the_rows_do(
    ledger: DuckDBLedger,
    rows: list[dict[str, Any]],
    edges: tuple[int, int],
    house_price: str | None,
    erase: str | None,
    narrowed: bool,
    live: bool,
) -> None:
    tenant = f"t{next(_tenants)}"
    _load(ledger, tenant, rows, live)
    _load(ledger, f"{tenant}-neighbour", rows[:3])
    if house_price is not None:
        override = price_from_dict(
            {"id": "house-model", "provider": "acme", "input": house_price, "output": "1"},
            source="user",
        )
        ledger.reprice(tenant, PriceCatalog.load().with_overrides([override]))
    if erase == "upload":
        ledger.delete_uploads_like(tenant, "up-", keep="up-1")
    elif erase == "tenant":
        ledger.delete_usage(f"{tenant}-neighbour")
    start = START + timedelta(minutes=edges[0], seconds=17)
    period = UsagePeriod(start=start, end=start + timedelta(minutes=edges[1]))
    where = (
        UsageFilter(models=("gpt-4o", "house-model"), exclude_features=("search",))
        if narrowed
        else EVERY_ROW
    )
    for scope in (None, period):
        assert_rollups_answer_as_the_rows(ledger, tenant, scope, where)
    kept = [row for row in rows if erase != "upload" or row["upload"] == 1]
    assert_repeats_are_the_prompts_answered_twice(ledger, tenant, kept)
    assert_rollups_answer_as_the_rows(ledger, f"{tenant}-neighbour", None)


def test_live_commits_into_a_busy_hour_merge_their_figures_exactly(
    ledger: DuckDBLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    merges: list[int] = []
    real = rollups.merge_statements

    def counted(*args: Any, **kwargs: Any) -> list[Statement]:
        merges.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(rollups, "merge_statements", counted)
    tenant = f"t{next(_tenants)}"
    base = {
        "route": ROUTES[0],
        "feature": "chat",
        "error": "",
        "input": 1_000,
        "output": 100,
        "cost": Decimal("0.004"),
        "latency": 850.0,
        "ttft": 120.0,
        "prompt": "p1",
        "tags": (),
        "end_user": "",
        "upload": 0,
    }
    busy = [
        {**base, "minute": 60 + i % 50, "second": i % 60, "route": ROUTES[i % 3], "output": i}
        for i in range(80)
    ]
    _load(ledger, tenant, busy)
    later = [
        {
            **base,
            "minute": 60 + i % 50,
            "second": i % 60,
            "error": "timeout" if i % 4 else "",
            "latency": float(10 * i),
            "cost": None if i % 5 == 0 else Decimal("0.25"),
            "feature": FEATURES[i % 4],
            "input": 300_000 - i,
        }
        for i in range(30)
    ]
    for i in range(0, 30, 3):
        part = later[i : i + 3] + busy[i : i + 1]  # a row the tenant has: not counted again
        writer = ledger.open_upload(tenant, "otlp_live")
        writer.stage(_table(tenant, "otlp_live", part))
        assert writer.commit() == (3, 1)
    assert len(merges) == 10
    assert_rollups_answer_as_the_rows(ledger, tenant, None)
    period = UsagePeriod(start=START + timedelta(minutes=75, seconds=9), end=START + HOUR * 3)
    assert_rollups_answer_as_the_rows(ledger, tenant, period)


def test_prompt_repeats_hold_each_prompt_answered_twice_and_no_other(
    ledger: DuckDBLedger,
) -> None:
    """Twice in one commit, once in each of two commits, answered once and failed once, and one
    call committed twice (a duplicate row, counted once): only the first two are repeats; and
    replacing an upload with the same rows keeps them as they were (the replaced rows' prompts
    are not repeats of the rows replacing them)."""
    tenant = f"t{next(_tenants)}"

    def call(minute: int, prompt: str, upload: int, error: str = "") -> dict[str, Any]:
        return {
            **_row(minute),
            "route": ROUTES[0],
            "prompt": prompt,
            "upload": upload,
            "error": error,
        }

    first = [call(1, "twice-at-once", 0), call(2, "twice-at-once", 0), call(3, "apart", 0)]
    first += [call(4, "failed-once", 0), call(5, "sent-again", 0)]
    second = [call(61, "apart", 1), call(62, "failed-once", 1, error="timeout")]
    second += [call(63, "replaced", 1), first[-1]]
    for upload, part in enumerate((first, second)):
        writer = ledger.open_upload(tenant, f"up-{upload}")
        writer.stage(_table(tenant, f"up-{upload}", part))
        writer.commit()
    rows = first + second[:3]
    assert_repeats_are_the_prompts_answered_twice(ledger, tenant, rows)
    assert {"twice-at-once", "apart"} == {
        p.prompt_hash for p in ledger._duplicate_prompts(tenant, None, 5).top_prompts
    }
    assert_rollups_answer_as_the_rows(ledger, tenant, None)
    again = [{**row, "key": next(_keys)} for row in second[:3]]
    writer = ledger.open_upload(tenant, "up-1-again")
    writer.stage(_table(tenant, "up-1-again", again))
    writer.commit()
    ledger.delete_uploads_like(tenant, "up-1", keep="up-1-again")
    assert_repeats_are_the_prompts_answered_twice(ledger, tenant, first + again)
    assert_rollups_answer_as_the_rows(ledger, tenant, None)


def test_erasing_a_tenant_removes_its_rollups(ledger: DuckDBLedger) -> None:
    tenant = f"t{next(_tenants)}"
    _load(ledger, tenant, [_row(5)])
    assert ledger._rollup_requests(tenant) == 1
    ledger.delete_usage(tenant)
    assert ledger._rollup_requests(tenant) == 0
    for table in ROLLUP_TABLES:
        counted = Statement.of(
            f"SELECT count(*) FROM {table} WHERE tenant_id = $tenant_id", {"tenant_id": tenant}
        )
        assert ledger._rows(counted) == [(0,)]


def test_a_ledger_file_from_before_the_rollups_gets_them_built_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.duckdb"
    rows = [_row(minute) for minute in range(0, 600, 7)]
    first = DuckDBLedger(path)
    _load(first, "t", rows)
    expected = first._summary("t", None)
    first.close()
    with duckdb.connect(str(path)) as old:  # the file as a release without rollups left it
        for table in (*ROLLUP_TABLES, "usage_rollup_state"):
            old.execute(f"DROP TABLE {table}")
    go = threading.Event()
    build = DuckDBLedger._build_rollups

    def held_back(self: DuckDBLedger) -> None:
        go.wait()
        build(self)

    monkeypatch.setattr(DuckDBLedger, "_build_rollups", held_back)
    reopened = DuckDBLedger(path)  # opens at once; reads use the rows until the build ends
    assert not reopened._rollups_built
    assert reopened._summary("t", None) == expected
    go.set()
    reopened.wait_for_answers()
    assert reopened._rollups_built and reopened._rollup_requests("t") == len(rows)
    reopened.exact_percentiles_up_to = -1
    assert_rollups_answer_as_the_rows(reopened, "t", None)
    reopened.close()
    monkeypatch.undo()
    again = DuckDBLedger(path)
    assert again._rollups_built
    again.close()


def die_at(ledger: DuckDBLedger, marker: str) -> None:
    """From now on the process exits, as if killed, when the ledger sends a statement that
    contains `marker` (everything before it in its transaction sent, nothing committed)."""
    opened = ledger._cursor

    class Killing:
        def __init__(self, cursor: Any) -> None:
            self._cursor = cursor

        def execute(self, sql: str, params: Any = None) -> Any:
            if marker in sql:
                os._exit(3)
            return self._cursor.execute(sql, params)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cursor, name)

    @contextmanager
    def killing_cursor() -> Iterator[Any]:
        with opened() as cursor:
            yield Killing(cursor)

    ledger._cursor = killing_cursor  # type: ignore[method-assign]


_KILLED_COMMIT = """
import sys
from pathlib import Path
from apex.analytics.ledger_duckdb import DuckDBLedger
from tests.integration.test_ledger_rollups import _load, _row, die_at

ledger = DuckDBLedger(Path(sys.argv[1]))
_load(ledger, "t", [_row(minute) for minute in range(0, 300, 11)])
die_at(ledger, "INSERT INTO usage_latency_hourly")  # the rows and sums in, the sketch not yet
_load(ledger, "t", [_row(minute) for minute in range(1, 300, 13)])
"""


def _row(minute: int) -> dict[str, Any]:
    return {
        "minute": minute,
        "second": minute % 60,
        "route": ROUTES[minute % 3],
        "feature": FEATURES[minute % 3],
        "error": "",
        "input": minute,
        "output": 2,
        "cost": Decimal("0.25"),
        "latency": float(minute % 40 + 1),
        "ttft": None,
        "prompt": "",
        "upload": minute % 3,
        "tags": ("batch",) if minute % 5 else (),
        "end_user": "",
    }


def test_a_process_killed_mid_commit_leaves_rows_and_rollups_agreeing(tmp_path: Path) -> None:
    path = tmp_path / "killed.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_COMMIT, str(path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr.decode()[-2000:]
    reopened = DuckDBLedger(path)
    reopened.exact_percentiles_up_to = -1
    # the second upload's rows went with its rollups: only the first one is there
    assert reopened._totals("t", None).requests == len(range(0, 300, 11))
    assert_rollups_answer_as_the_rows(reopened, "t", None)
    reopened.close()


_KILLED_REPRICING = """
import sys
from pathlib import Path
from apex.analytics.ledger_duckdb import DuckDBLedger
from apex.analytics.pricing import PriceCatalog, price_from_dict
from tests.integration.test_ledger_rollups import _load, _row, die_at

ledger = DuckDBLedger(Path(sys.argv[1]))
_load(ledger, "t", [_row(minute) for minute in range(0, 300, 11)])
print(ledger._totals("t", None).cost_usd, flush=True)
die_at(ledger, "INSERT INTO usage_hourly")  # the rows re-priced, their rollups not yet
ledger.reprice("t", PriceCatalog.load().with_overrides([price_from_dict(
    {"id": "house-model", "provider": "acme", "input": "9", "output": "9"}, source="user")]))
"""


def test_a_process_killed_mid_repricing_leaves_rows_and_rollups_agreeing(tmp_path: Path) -> None:
    path = tmp_path / "killed.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_REPRICING, str(path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        timeout=120,
        text=True,
    )
    assert done.returncode == 3, done.stderr[-2000:]
    reopened = DuckDBLedger(path)
    reopened.exact_percentiles_up_to = -1
    assert str(reopened._totals("t", None).cost_usd) == done.stdout.strip()  # not re-priced
    assert_rollups_answer_as_the_rows(reopened, "t", None)
    reopened.close()
