"""Each query is written once: it renders for both engines, always scoped by tenant."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import sqlglot

from apex.analytics import queries as q
from apex.analytics.filters import UsageFilter

START, END = datetime(2024, 1, 1), datetime(2024, 2, 1)


def _scanned(select: sqlglot.exp.Select) -> sqlglot.exp.Table | None:
    """The table a SELECT reads directly (sqlglot names the clause `from_` since 28)."""
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    return table if isinstance(table, sqlglot.exp.Table) else None


@pytest.mark.parametrize("query", q.ALL_QUERIES, ids=lambda query: query.name)
@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_every_query_renders_with_the_tenant_bound(query: q.LedgerQuery, engine: q.Engine) -> None:
    sql = q.render(
        query,
        engine,
        tenant_id="tenant-1",
        start=START,
        end=END,
        database="apex",
        limit=5,
        min_requests=3,
    )
    assert "'tenant-1'" in sql
    assert ":" + "tenant_id" not in sql
    if engine == "duckdb":
        sqlglot.parse_one(sql, read="duckdb")
    else:
        assert sql.endswith("SETTINGS prefer_column_name_to_alias = 1")
        assert "apex.usage" in sql


@pytest.mark.parametrize("query", q.ALL_QUERIES, ids=lambda query: query.name)
def test_every_statement_on_usage_filters_by_tenant(query: q.LedgerQuery) -> None:
    scans = 0
    for select in query.tree.find_all(sqlglot.exp.Select):
        table = _scanned(select)
        if table is not None and table.name == "usage":
            assert "tenant_id" in select.args["where"].sql()
            scans += 1
    assert scans


def test_a_query_without_tenant_is_refused() -> None:
    with pytest.raises(ValueError):
        q.render(q.SUMMARY, "duckdb", tenant_id="", start=START, end=END)


def test_hostile_tenant_ids_stay_literals() -> None:
    hostile = "x' OR '1'='1"
    for engine in ("duckdb", "clickhouse"):
        sql = q.render(q.SUMMARY, engine, tenant_id=hostile, start=START, end=END)
        where = sqlglot.parse_one(sql.split(" SETTINGS ")[0], read=engine).args["where"]
        literals = [lit.this for lit in where.find_all(sqlglot.exp.Literal) if lit.is_string]
        assert hostile in literals


def test_clickhouse_gets_exact_percentiles_and_utc_bounds() -> None:
    sql = q.render(q.BY_MODEL, "clickhouse", tenant_id="t", start=START, end=END)
    assert "quantilesExactInclusive(0.5, 0.95, 0.99)(latency_ms)" in sql
    assert "toDateTime64('2024-01-01 00:00:00.000000', 6, 'UTC')" in sql


def test_a_value_that_looks_like_another_placeholder_stays_itself() -> None:
    tricky = "\x00start\x00"
    sql = q.render(q.SUMMARY, "duckdb", tenant_id=tricky, start=START, end=END)
    where = sqlglot.parse_one(sql, read="duckdb").args["where"]
    literals = [lit.this for lit in where.find_all(sqlglot.exp.Literal) if lit.is_string]
    assert tricky in literals


SCOPED = UsageFilter(
    models=("gpt-4o", "x' OR '1'='1"),
    providers=("openai",),
    features=("it's", "a\\'b"),
    exclude_features=("apex",),
)


@pytest.mark.parametrize("query", q.ALL_QUERIES, ids=lambda query: query.name)
def test_a_scope_narrows_every_scan_of_the_rows(query: q.LedgerQuery) -> None:
    sql = q.render(
        query.narrowed(SCOPED),
        "duckdb",
        tenant_id="tenant-1",
        start=START,
        end=END,
        limit=5,
        min_requests=3,
        **q.filter_values(SCOPED),
    )
    scans = 0
    for select in sqlglot.parse_one(sql, read="duckdb").find_all(sqlglot.exp.Select):
        table = _scanned(select)
        if table is not None and table.name == "usage":
            where = select.args["where"]
            literals = {lit.this for lit in where.find_all(sqlglot.exp.Literal) if lit.is_string}
            assert set(SCOPED.models) | set(SCOPED.features) | {"openai", "apex"} <= literals
            scans += 1
    assert scans
    clickhouse = q.render(
        query.narrowed(SCOPED),
        "clickhouse",
        tenant_id="tenant-1",
        start=START,
        end=END,
        limit=5,
        min_requests=3,
        **q.filter_values(SCOPED),
    )
    assert len(re.findall(r"(?:u\.)?provider IN \('openai'\)", clickhouse)) == scans
    assert len(re.findall(r"NOT \((?:u\.)?feature IN \('apex'\)\)", clickhouse)) == scans


def test_an_empty_scope_leaves_the_statement_as_it_is() -> None:
    assert q.SUMMARY.narrowed(UsageFilter()) is q.SUMMARY
    assert q.filter_values(UsageFilter()) == {}


def test_only_the_dimensions_named_narrow() -> None:
    where = UsageFilter(providers=("anthropic",))
    sql = q.render(
        q.SUMMARY.narrowed(where),
        "duckdb",
        tenant_id="t",
        start=START,
        end=END,
        **q.filter_values(where),
    )
    condition = sql.split("WHERE", 1)[1]
    assert "provider IN ('anthropic')" in condition and "model" not in condition
