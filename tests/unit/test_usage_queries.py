"""Each query is written once: it renders for both engines, always scoped by tenant."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import sqlglot

from apex.analytics import prompt_repeats
from apex.analytics import queries as q
from apex.analytics.filters import UsageFilter
from apex.analytics.statement import Binder, Engine, Statement

START, END = datetime(2024, 1, 1), datetime(2024, 2, 1)
# the statements over the rows: the ledger's, and the one reading the kept prompt repeats
EVERY_QUERY = (*q.ALL_QUERIES, prompt_repeats.DUPLICATES)
# the rows, and the copy of some of them a statement may read instead
ROW_TABLES = {"usage", prompt_repeats.CALLS_TABLE}


def _scanned(select: sqlglot.exp.Select) -> sqlglot.exp.Table | None:
    """The table a SELECT reads directly (sqlglot names the clause `from_` since 28)."""
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    return table if isinstance(table, sqlglot.exp.Table) else None


@pytest.mark.parametrize("query", q.ALL_QUERIES, ids=lambda query: query.name)
@pytest.mark.parametrize("engine", ["duckdb", "clickhouse"])
def test_every_query_renders_with_the_tenant_bound(query: q.LedgerQuery, engine: Engine) -> None:
    statement = q.render(
        query,
        engine,
        tenant_id="tenant-1",
        start=START,
        end=END,
        database="apex",
        limit=5,
        min_requests=3,
    )
    assert dict(statement.params)["tenant_id"] == "tenant-1"
    assert "tenant-1" not in statement.sql
    assert ":" + "tenant_id" not in statement.sql
    if engine == "duckdb":
        assert "$tenant_id" in statement.sql
        sqlglot.parse_one(statement.sql, read="duckdb")
    else:
        assert "{tenant_id: String}" in statement.sql
        assert statement.sql.endswith("SETTINGS prefer_column_name_to_alias = 1")
        assert "apex.usage" in statement.sql


@pytest.mark.parametrize("query", EVERY_QUERY, ids=lambda query: query.name)
def test_every_statement_on_usage_filters_by_tenant(query: q.LedgerQuery) -> None:
    scans = 0
    for select in query.tree.find_all(sqlglot.exp.Select):
        table = _scanned(select)
        if table is not None and table.name in ROW_TABLES:
            assert "tenant_id" in select.args["where"].sql()
            scans += 1
    assert scans


def test_a_query_without_tenant_is_refused() -> None:
    with pytest.raises(ValueError):
        q.render(q.SUMMARY, "duckdb", tenant_id="", start=START, end=END)


def test_hostile_tenant_ids_never_enter_the_statement() -> None:
    hostile = "x' OR '1'='1"
    for engine in ("duckdb", "clickhouse"):
        statement = q.render(q.SUMMARY, engine, tenant_id=hostile, start=START, end=END)
        assert hostile not in statement.sql and "'1'" not in statement.sql
        assert dict(statement.params)["tenant_id"] == hostile


def test_clickhouse_gets_exact_percentiles_and_utc_bounds() -> None:
    statement = q.render(q.BY_MODEL, "clickhouse", tenant_id="t", start=START, end=END)
    assert "quantilesExactInclusive(0.5, 0.95, 0.99)(latency_ms)" in statement.sql
    assert "{start: DateTime64(6, 'UTC')}" in statement.sql
    assert statement.values("clickhouse")["start"] == "2024-01-01 00:00:00.000000"


def test_a_statement_takes_only_the_values_its_text_names() -> None:
    statement = Statement.of("SELECT $v1, {v2:String}", {"v1": 1, "v10": 10, "v2": "b", "v": 0})
    assert statement.params == (("v1", 1), ("v2", "b"))


def test_a_binder_keeps_values_out_of_the_text() -> None:
    hostile = "'; DROP TABLE usage; --"
    for engine in ("duckdb", "clickhouse"):
        bind = Binder(engine)
        statement = bind.statement(f"SELECT count(*) FROM usage WHERE model = {bind(hostile)}")
        assert hostile not in statement.sql
        assert statement.params == (("v0", hostile),)


SCOPED = UsageFilter(
    models=("gpt-4o", "x' OR '1'='1"),
    providers=("openai",),
    features=("it's", "a\\'b"),
    exclude_features=("apex",),
)


@pytest.mark.parametrize("query", EVERY_QUERY, ids=lambda query: query.name)
def test_a_scope_narrows_every_scan_of_the_rows(query: q.LedgerQuery) -> None:
    statement = q.render(
        query.narrowed(SCOPED),
        "duckdb",
        tenant_id="tenant-1",
        start=START,
        end=END,
        limit=5,
        min_requests=3,
        **q.filter_values(SCOPED),
    )
    named = {name: value for name, value in statement.params if name.startswith("f_")}
    assert set(named.values()) == set(SCOPED.models) | set(SCOPED.features) | {"openai", "apex"}
    scans = 0
    for select in sqlglot.parse_one(statement.sql, read="duckdb").find_all(sqlglot.exp.Select):
        table = _scanned(select)
        if table is not None and table.name in ROW_TABLES:
            where = select.args["where"].sql(dialect="duckdb")
            assert all(f"${name}" in where for name in named)
            assert not any(value in where for value in named.values())
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
    ).sql
    assert len(re.findall(r"(?:u\.)?provider IN \(\{f_p0: String\}\)", clickhouse)) == scans
    assert len(re.findall(r"NOT \((?:u\.)?feature IN \(\{f_x0: String\}\)\)", clickhouse)) == scans


def test_an_empty_scope_leaves_the_statement_as_it_is() -> None:
    assert q.SUMMARY.narrowed(UsageFilter()) is q.SUMMARY
    assert q.filter_values(UsageFilter()) == {}


def test_only_the_dimensions_named_narrow() -> None:
    where = UsageFilter(providers=("anthropic",))
    statement = q.render(
        q.SUMMARY.narrowed(where),
        "duckdb",
        tenant_id="t",
        start=START,
        end=END,
        **q.filter_values(where),
    )
    condition = statement.sql.split("WHERE", 1)[1]
    assert "provider IN ($f_p0)" in condition and "model" not in condition
    assert dict(statement.params)["f_p0"] == "anthropic"
