"""Each query is written once: it renders for both engines, always scoped by tenant."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlglot

from apex.analytics import queries as q

START, END = datetime(2024, 1, 1), datetime(2024, 2, 1)


@pytest.mark.parametrize("query", q.ALL_QUERIES, ids=lambda query: query.name)
@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_every_query_renders_with_the_tenant_bound(query: q.LedgerQuery, engine: q.Engine) -> None:
    sql = q.render(query, engine, tenant_id="tenant-1", start=START, end=END, database="apex",
                   limit=5, min_requests=3)
    assert "'tenant-1'" in sql
    assert ":" + "tenant_id" not in sql
    sqlglot.parse_one(sql.split(" SETTINGS ")[0],
                      read="clickhouse" if engine == "clickhouse" else "duckdb")


@pytest.mark.parametrize("query", q.ALL_QUERIES, ids=lambda query: query.name)
def test_every_statement_on_usage_filters_by_tenant(query: q.LedgerQuery) -> None:
    tree = query.tree
    for select in tree.find_all(sqlglot.exp.Select):
        source = select.args.get("from")
        if source and source.find(sqlglot.exp.Table) and source.find(
                sqlglot.exp.Table).name == "usage":
            assert "tenant_id" in select.args["where"].sql()


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
    assert "quantileExactInclusive(0.95)(latency_ms)" in sql
    assert "toDateTime64('2024-01-01 00:00:00.000000', 6, 'UTC')" in sql


def test_a_value_that_looks_like_another_placeholder_stays_itself() -> None:
    tricky = "\x00start\x00"
    sql = q.render(q.SUMMARY, "duckdb", tenant_id=tricky, start=START, end=END)
    where = sqlglot.parse_one(sql, read="duckdb").args["where"]
    literals = [lit.this for lit in where.find_all(sqlglot.exp.Literal) if lit.is_string]
    assert tricky in literals
