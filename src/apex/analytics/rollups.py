"""Hourly rollups of the usage rows, kept in the same transaction as the rows (DuckDB).

Reading ten million rows costs most of a second per statement; the same figures summed per
tenant × hour × provider × model × feature × operation × status × error type (`usage_hourly`)
are a few ten thousand rows, and latencies counted per bucket (sketch.py) per tenant × hour ×
(provider, model, feature) (`usage_latency_hourly`, summed per day in `usage_latency_daily`)
about a million. A read over [start, end) takes the daily sketch for its whole days, the hourly
rollups for its other whole hours, and aggregates the raw rows of the partial hours at both
edges the same way on the fly (`edge_statements`, shared by the statements of one read), so
every sum, count, bound and name is exact (costs stay DECIMAL); only percentiles read from the
sketch are approximate, within sketch.RELATIVE_ERROR.

Upkeep recomputes whole rollup hours from the rows: an upload refreshes the hours its rows fall
in, a re-pricing the rows of the models it re-priced, an erasure removes the tenant's; each in
the transaction that changes the rows, so a crash leaves both agreeing. A commit of fewer rows
than its hours hold already (live usage arriving into the current hour) merges the figures of
its own rows into those hours instead (`merge_statements`): every rollup column is a sum, a
count, a minimum or a maximum, so the merge is exact, and it costs the new rows, not the hour.
The prompt repeats (prompt_repeats.py) are kept, erased and built with the rollups.
A ledger file from before the rollups gets them built tenant by tenant in the background
(`usage_rollup_state` records that every tenant was built); until then reads of the tenants not
yet built use the rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import duckdb

from apex.analytics import prompt_repeats
from apex.analytics import queries as q
from apex.analytics.filters import UsageFilter
from apex.analytics.sketch import bucket_sql, quantiles
from apex.analytics.statement import Statement, Value

# changed with the rollup tables, and with DuckDB's version (the sketch keys groups on DuckDB's
# `hash`): a file whose rollups were built with another version gets them built again
ROLLUP_VERSION = f"5 duckdb {duckdb.__version__}"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ROLLUP_TABLES = (
    "usage_hourly",
    "usage_latency_hourly",
    "usage_latency_daily",
    *prompt_repeats.TABLES,
)

_DIMENSIONS = ("provider", "model", "feature", "operation", "status", "error_type")
_SKETCH_DIMENSIONS = ("provider", "model", "feature")

TABLES_SQL = (
    """CREATE TABLE IF NOT EXISTS usage_hourly (tenant_id VARCHAR NOT NULL,
    hour_start TIMESTAMP NOT NULL, provider VARCHAR NOT NULL, model VARCHAR NOT NULL,
    feature VARCHAR NOT NULL, operation VARCHAR NOT NULL, status VARCHAR NOT NULL,
    error_type VARCHAR NOT NULL, requests BIGINT NOT NULL, cost_usd DECIMAL(38, 12),
    input_tokens HUGEINT, output_tokens HUGEINT, cached_input_tokens HUGEINT,
    reasoning_tokens HUGEINT, cache_write_input_tokens HUGEINT, unpriced_requests BIGINT,
    latency_rows BIGINT, ttft_rows BIGINT, timed_ttft_rows BIGINT, prompt_hash_rows BIGINT,
    prefix_hash_rows BIGINT, output_token_rows BIGINT, max_latency_ms DOUBLE,
    first_timestamp TIMESTAMP, last_timestamp TIMESTAMP, batchable_requests BIGINT,
    batchable_cost_usd DECIMAL(38, 12), batchable_input_tokens HUGEINT,
    batchable_output_tokens HUGEINT, tagged_requests BIGINT, off_hours_requests BIGINT)""",
    """CREATE TABLE IF NOT EXISTS usage_latency_hourly (tenant_id VARCHAR NOT NULL,
    hour_start TIMESTAMP NOT NULL, group_key UBIGINT NOT NULL, metric UTINYINT NOT NULL,
    bucket INTEGER NOT NULL, requests BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS usage_latency_daily (tenant_id VARCHAR NOT NULL,
    day_start TIMESTAMP NOT NULL, group_key UBIGINT NOT NULL, metric UTINYINT NOT NULL,
    bucket INTEGER NOT NULL, requests BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS usage_rollup_state (name VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL)""",
    *prompt_repeats.TABLES_SQL,
)

_HOUR = "date_trunc('hour', timestamp)"


def _named(names: tuple[str, ...]) -> str:
    """Groups are keyed on one 64-bit hash of their names (several times faster to group on
    than the strings, as in queries.py), and each name read back with any_value()."""
    return ", ".join(f"any_value({name}) AS {name}" for name in names)


def _sums_select(where: str, tenant: str = "any_value(tenant_id)", source: str = "usage") -> str:
    """Rollup rows aggregated from the usage rows matching `where` (the build, the refresh and
    the edges of a read all use this one statement; `tenant`: the tenant's placeholder where
    `where` names one).

    The batchable counts are of the rows tagged with a batch keyword or sent off hours: a
    keyword in the feature (a dimension) makes every row of the group batchable, which the
    read decides per group rather than every row here.
    """
    return f"""SELECT {tenant} AS tenant_id, {_HOUR} AS hour_start,
       {_named(_DIMENSIONS)},
       count(*) AS requests, sum(cost_usd) AS cost_usd,
       sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cached_input_tokens) AS cached_input_tokens,
       sum(reasoning_tokens) AS reasoning_tokens,
       sum(cache_write_input_tokens) AS cache_write_input_tokens,
       count(*) FILTER (WHERE cost_source = 'unpriced') AS unpriced_requests,
       count(latency_ms) AS latency_rows, count(ttft_ms) AS ttft_rows,
       count(ttft_ms) FILTER (WHERE latency_ms IS NOT NULL) AS timed_ttft_rows,
       count(*) FILTER (WHERE prompt_hash <> '') AS prompt_hash_rows,
       count(*) FILTER (WHERE prefix_hash <> '') AS prefix_hash_rows,
       count(*) FILTER (WHERE output_tokens > 0) AS output_token_rows,
       max(latency_ms) AS max_latency_ms,
       min(timestamp) AS first_timestamp, max(timestamp) AS last_timestamp,
       count(*) FILTER (WHERE tagged OR off_hours) AS batchable_requests,
       sum(cost_usd) FILTER (WHERE tagged OR off_hours) AS batchable_cost_usd,
       sum(input_tokens) FILTER (WHERE tagged OR off_hours) AS batchable_input_tokens,
       sum(output_tokens) FILTER (WHERE tagged OR off_hours) AS batchable_output_tokens,
       count(*) FILTER (WHERE tagged) AS tagged_requests,
       count(*) FILTER (WHERE off_hours) AS off_hours_requests
FROM (SELECT *, {q.TAGS_KEYWORD} AS tagged, {q.OFF_HOURS} AS off_hours FROM {source}
      WHERE {where}) AS flagged
GROUP BY hash({", ".join(_DIMENSIONS)}), hour_start"""


# the sketch keys a (provider, model, feature) group on one 64-bit hash of its names: grouping
# ten million rows by it is several times faster than by the strings; reads match it against
# the names of `usage_hourly` (a collision between two groups of one tenant is as unlikely as
# the row-key collisions the ledger already relies on)
GROUP_KEY = f"hash({', '.join(_SKETCH_DIMENSIONS)})"


def _sketch_select(where: str, tenant: str = "tenant_id", source: str = "usage") -> str:
    """Latency (metric 0) and time-to-first-token (metric 1, of the rows with a latency, as
    the latency report reads it) bucket counts per hour and group of the usage rows matching
    `where` (`tenant`: the tenant's placeholder, a constant where `where` names one)."""
    return " UNION ALL ".join(
        f"""(SELECT {tenant} AS tenant_id, {_HOUR} AS hour_start,
       {GROUP_KEY} AS group_key, CAST({metric} AS UTINYINT) AS metric,
       {bucket_sql(column)} AS bucket, count(*) AS requests
FROM {source} WHERE ({where}) AND latency_ms IS NOT NULL AND {column} IS NOT NULL
GROUP BY ALL)"""
        for metric, column in ((0, "latency_ms"), (1, "ttft_ms"))
    )


def _daily_select(where: str) -> str:
    """The daily sketch rows of the hourly ones matching `where`."""
    return f"""SELECT tenant_id, date_trunc('day', hour_start) AS day_start, group_key, metric,
       bucket, sum(requests) AS requests
FROM usage_latency_hourly WHERE {where}
GROUP BY ALL"""


_DAY_OF_HOUR = "date_trunc('day', hour_start)"


def refresh_statements(
    tenant_id: str,
    rollup_rows: str = "TRUE",
    raw_rows: str = "TRUE",
    day_rows: str | None = "TRUE",
    values: Mapping[str, Value] | None = None,
) -> list[Statement]:
    """Statements that recompute the tenant's rollup rows matching `rollup_rows` (a condition
    on `hour_start` and the dimensions that holds for whole rollup rows) from the usage rows
    matching `raw_rows` (the same rows, said of the usage table): delete them, then aggregate
    them again; then the daily sketch of the days matching `day_rows` (a condition on `{day}`,
    the day's start), from the hourly one. `day_rows=None` leaves the latency sketch alone (a
    re-pricing changes no latency). `values`: those of the conditions' placeholders."""
    tenant = "$tenant_id"
    rollup_scope = f"tenant_id = {tenant} AND ({rollup_rows})"
    raw_scope = f"tenant_id = {tenant} AND ({raw_rows})"
    statements = [
        f"DELETE FROM usage_hourly WHERE {rollup_scope}",
        f"INSERT INTO usage_hourly {_sums_select(raw_scope, tenant)}",
    ]
    if day_rows is not None:
        statements += [
            f"DELETE FROM usage_latency_hourly WHERE {rollup_scope}",
            f"INSERT INTO usage_latency_hourly {_sketch_select(raw_scope, tenant)}",
            *_daily_refresh(tenant, day_rows),
        ]
    bound = {**(values or {}), "tenant_id": tenant_id}
    return [Statement.of(sql, bound) for sql in statements]


# how each rollup column of two sets of rows combines into the column of both (the others add)
_MERGED = {
    **{name: "any_value" for name in ("tenant_id", *_DIMENSIONS)},
    "max_latency_ms": "max",
    "first_timestamp": "min",
    "last_timestamp": "max",
}


def merge_statements(
    tenant_id: str, fresh: str, rollup_rows: str, day_rows: str
) -> list[Statement]:
    """Statements that add the rows of table `fresh` (rows just added to the tenant's usage,
    all in the hours matching `rollup_rows`) to the tenant's rollups of those hours, then
    recompute the daily sketch of the days matching `day_rows` (as in refresh_statements)."""
    tenant = "$tenant_id"
    scope = f"tenant_id = {tenant} AND ({rollup_rows})"
    merged = ", ".join(
        f"{_MERGED.get(name, 'sum')}({name}) AS {name}"
        for name, _kind in _HOURLY_COLUMNS
        if name != "hour_start"
    )
    statements = [
        "CREATE OR REPLACE TEMP TABLE apex_merged_hourly AS "
        f"SELECT hour_start, {merged} FROM (SELECT * FROM usage_hourly WHERE {scope} "
        f"UNION ALL BY NAME {_sums_select('TRUE', tenant, fresh)}) AS both_sets "
        f"GROUP BY hash({', '.join(_DIMENSIONS)}), hour_start",
        "CREATE OR REPLACE TEMP TABLE apex_merged_sketch AS "
        "SELECT tenant_id, hour_start, group_key, metric, bucket, sum(requests) AS requests "
        f"FROM (SELECT * FROM usage_latency_hourly WHERE {scope} "
        f"UNION ALL BY NAME SELECT * FROM ({_sketch_select('TRUE', tenant, fresh)}) AS fresh_sketch"
        ") AS both_sets GROUP BY ALL",
        f"DELETE FROM usage_hourly WHERE {scope}",
        "INSERT INTO usage_hourly BY NAME SELECT * FROM apex_merged_hourly",
        f"DELETE FROM usage_latency_hourly WHERE {scope}",
        "INSERT INTO usage_latency_hourly BY NAME SELECT * FROM apex_merged_sketch",
        *_daily_refresh(tenant, day_rows),
        "DROP TABLE apex_merged_hourly",
        "DROP TABLE apex_merged_sketch",
    ]
    return [Statement.of(sql, {"tenant_id": tenant_id}) for sql in statements]


def _daily_refresh(tenant: str, day_rows: str) -> list[str]:
    """The daily sketch of the days matching `day_rows` (a condition on `{day}`), again from
    the hourly one."""
    return [
        f"DELETE FROM usage_latency_daily WHERE tenant_id = {tenant} AND "
        f"({day_rows.format(day='day_start')})",
        "INSERT INTO usage_latency_daily "
        + _daily_select(f"tenant_id = {tenant} AND ({day_rows.format(day=_DAY_OF_HOUR)})"),
    ]


def erase_statements(tenant_id: str) -> list[Statement]:
    """Remove the tenant's rollup rows."""
    return [
        Statement.of(f"DELETE FROM {table} WHERE tenant_id = $tenant_id", {"tenant_id": tenant_id})
        for table in ROLLUP_TABLES
    ]


BUILT_SQL = "SELECT value FROM usage_rollup_state WHERE name = 'version'"
# the rollup tables as this version lays them out, replacing those of another version
RECREATE_SQL = (
    *(f"DROP TABLE IF EXISTS {table}" for table in ROLLUP_TABLES),
    "DELETE FROM usage_rollup_state",
    *TABLES_SQL,
)
MARK_BUILT_SQL = f"INSERT OR REPLACE INTO usage_rollup_state VALUES ('version', '{ROLLUP_VERSION}')"


# -- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edges:
    """Where a period's whole hours and whole days begin and end: the daily sketch covers
    [day_start, day_end), the hourly rollups the rest of [hour_start, hour_end), the rows the
    rest of [start, end)."""

    hour_start: datetime
    hour_end: datetime
    day_start: datetime
    day_end: datetime
    # whether [start, end) has rows outside [hour_start, hour_end)
    partial: bool

    @classmethod
    def of(cls, start: datetime, end: datetime) -> Edges:
        first, last = _whole(
            start,
            end,
            start.replace(minute=0, second=0, microsecond=0),
            end.replace(minute=0, second=0, microsecond=0),
            HOUR,
        )
        day_first, day_last = _whole(first, last, first.replace(hour=0), last.replace(hour=0), DAY)
        return cls(first, last, day_first, day_last, (first, last) != (start, end))


def _whole(
    start: datetime, end: datetime, floor_start: datetime, floor_end: datetime, unit: timedelta
) -> tuple[datetime, datetime]:
    """The first and last boundary of the whole units inside [start, end), or (start, start)
    when none is (then every row comes from the finer level)."""
    first = floor_start if floor_start == start else floor_start + unit
    if first >= floor_end:
        return start, start
    return first, floor_end


_EDGES = (
    "tenant_id = :tenant_id AND ((timestamp >= :start AND timestamp < :hour_start) "
    "OR (timestamp >= :hour_end AND timestamp < :end))"
)
# the columns of `usage_hourly` with their types, which the edge rows (read back from Arrow,
# where a HUGEINT sum arrives as a DECIMAL) are cast to so the union keeps integers exact
_HOURLY_COLUMNS = (
    ("tenant_id", "VARCHAR"),
    ("hour_start", "TIMESTAMP"),
    *((name, "VARCHAR") for name in _DIMENSIONS),
    ("requests", "BIGINT"),
    ("cost_usd", "DECIMAL(38, 12)"),
    *(
        (name, "HUGEINT")
        for name in (
            "input_tokens",
            "output_tokens",
            "cached_input_tokens",
            "reasoning_tokens",
            "cache_write_input_tokens",
        )
    ),
    *(
        (name, "BIGINT")
        for name in (
            "unpriced_requests",
            "latency_rows",
            "ttft_rows",
            "timed_ttft_rows",
            "prompt_hash_rows",
            "prefix_hash_rows",
            "output_token_rows",
        )
    ),
    ("max_latency_ms", "DOUBLE"),
    ("first_timestamp", "TIMESTAMP"),
    ("last_timestamp", "TIMESTAMP"),
    ("batchable_requests", "BIGINT"),
    ("batchable_cost_usd", "DECIMAL(38, 12)"),
    ("batchable_input_tokens", "HUGEINT"),
    ("batchable_output_tokens", "HUGEINT"),
    ("tagged_requests", "BIGINT"),
    ("off_hours_requests", "BIGINT"),
)
_SKETCH_COLUMNS = (
    ("group_key", "UBIGINT"),
    ("metric", "UTINYINT"),
    ("bucket", "INTEGER"),
    ("requests", "BIGINT"),
)


def _cast(columns: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in columns)


def _hourly_cte(narrow: str, edges: bool) -> str:
    """`hourly`: rollup rows of the whole hours plus, when the period has partial hours
    (`edges`), their rows aggregated alike (the `edge_hourly` table the read passes in, see
    `edge_statements`)."""
    edge_rows = (
        f"\n  UNION ALL\n  SELECT {_cast(_HOURLY_COLUMNS)} FROM edge_hourly" if edges else ""
    )
    return f"""hourly AS (
  SELECT * FROM usage_hourly WHERE tenant_id = :tenant_id AND hour_start >= :hour_start
    AND hour_start < :hour_end{narrow}{edge_rows}
)"""


def _sketch_cte(narrow: str, edges: bool) -> str:
    """`sketch`: daily sketch rows of the whole days, hourly ones of the other whole hours and
    the edge rows bucketed alike (`edge_sketch`), with the names of their groups (which
    narrows them too)."""
    columns = "group_key, metric, bucket, requests"
    edge_rows = (
        f"\n  UNION ALL\n  SELECT {_cast(_SKETCH_COLUMNS)} FROM edge_sketch" if edges else ""
    )
    return f"""counted AS (
  SELECT {columns} FROM usage_latency_daily WHERE tenant_id = :tenant_id
    AND day_start >= :day_start AND day_start < :day_end
  UNION ALL
  SELECT {columns} FROM usage_latency_hourly WHERE tenant_id = :tenant_id
    AND ((hour_start >= :hour_start AND hour_start < :day_start)
         OR (hour_start >= :day_end AND hour_start < :hour_end)){edge_rows}
),
named AS (
  SELECT DISTINCT {GROUP_KEY} AS group_key, {", ".join(_SKETCH_DIMENSIONS)}
  FROM usage_hourly WHERE tenant_id = :tenant_id{narrow}
),
sketch AS (
  SELECT named.*, metric, bucket, requests FROM counted JOIN named USING (group_key)
)"""


@cache
def edge_statements(where: UsageFilter) -> dict[str, q.LedgerQuery]:
    """The statements aggregating the rows of a period's partial hours, by the table name the
    rollup statements read them as: every statement of one read (the summary's five, a chat
    run's dozen over the same period and scope) shares them, so the rows are scanned once."""
    narrow = _narrow(where)
    return {
        "edge_hourly": q.LedgerQuery("edge_hourly", _sums_select(_EDGES + narrow)),
        "edge_sketch": q.LedgerQuery(
            "edge_sketch",
            f"""SELECT group_key, metric, bucket, requests
FROM ({_sketch_select(_EDGES + narrow)}) AS edge_rows""",
        ),
    }


def _narrow(where: UsageFilter) -> str:
    return "".join(f" AND {clause}" for clause, _values in where.clauses())


_ERRORS = "sum(CASE WHEN status = 'error' THEN requests ELSE 0 END)"
_SPEND = "coalesce(sum(cost_usd), 0) AS spend"


@dataclass(frozen=True)
class RollupRead:
    """How one ledger statement is answered from the rollups: a statement over `hourly` with
    the raw statement's columns (`quantiles` names, by index, the columns to fill from the
    sketch), and the sketch grouping those columns are read with."""

    sums: str
    sketch_group: tuple[str, ...] = ()
    # (column index, metric, levels) per quantile column
    quantiles: tuple[tuple[int, int, tuple[float, ...]], ...] = ()
    # the grouping columns' indexes in a sums row, in `sketch_group` order
    key_columns: tuple[int, ...] = ()
    # ORDER BY the p95 latency descending, then the key columns (the latency report's order)
    by_p95: bool = False


_LATENCY_LEVELS = (0.5, 0.95, 0.99)
_TTFT_LEVELS = (0.5, 0.95)
_LATENCY_STATS = (
    "sum(latency_rows) AS requests, NULL AS latency_quantiles, "
    "max(max_latency_ms) AS max_latency_ms, sum(timed_ttft_rows) AS ttft_requests, "
    "NULL AS ttft_quantiles"
)

READS: dict[str, RollupRead] = {
    q.SUMMARY.name: RollupRead(f"""SELECT sum(requests) AS requests, sum(cost_usd) AS cost_usd,
       sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), sum(reasoning_tokens),
       {_ERRORS}, sum(unpriced_requests), min(first_timestamp), max(last_timestamp),
       sum(cache_write_input_tokens)
FROM hourly"""),
    q.BY_MODEL.name: RollupRead(
        f"""SELECT provider, model, sum(requests) AS requests, {_SPEND},
       sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), sum(reasoning_tokens),
       {_ERRORS}, sum(unpriced_requests), NULL AS latency_quantiles,
       sum(cache_write_input_tokens)
FROM hourly GROUP BY provider, model
ORDER BY spend DESC, requests DESC, provider, model""",
        ("provider", "model"),
        ((10, 0, _LATENCY_LEVELS),),
        (0, 1),
    ),
    q.BY_FEATURE.name: RollupRead(
        f"""SELECT feature, sum(requests) AS requests, {_SPEND},
       sum(input_tokens), sum(output_tokens), {_ERRORS}, NULL AS latency_quantiles,
       sum(unpriced_requests)
FROM hourly GROUP BY feature ORDER BY spend DESC, requests DESC, feature""",
        ("feature",),
        ((6, 0, _LATENCY_LEVELS),),
        (0,),
    ),
    q.BY_DAY.name: RollupRead(f"""SELECT CAST(hour_start AS DATE) AS day, sum(requests), {_SPEND},
       sum(input_tokens), sum(output_tokens), {_ERRORS}, sum(unpriced_requests)
FROM hourly GROUP BY day ORDER BY day"""),
    q.BY_DAY_MODEL.name: RollupRead(f"""SELECT CAST(hour_start AS DATE) AS day, provider, model,
       sum(requests) AS requests, {_SPEND}, sum(unpriced_requests)
FROM hourly GROUP BY day, provider, model
ORDER BY day, spend DESC, requests DESC, provider, model"""),
    q.BY_MODEL_FEATURE.name: RollupRead(
        f"""SELECT provider, model, feature, operation, sum(requests) AS requests, {_SPEND},
       sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), sum(reasoning_tokens),
       {_ERRORS}, sum(unpriced_requests), {q.MIX_GROUP_KEY}
FROM hourly GROUP BY provider, model, feature, operation
ORDER BY spend DESC, requests DESC, provider, model, feature, operation"""
    ),
    q.LATENCY.name: RollupRead(
        f"""SELECT provider, model, feature, {_LATENCY_STATS}
FROM hourly GROUP BY provider, model, feature HAVING sum(latency_rows) > 0""",
        ("provider", "model", "feature"),
        ((4, 0, _LATENCY_LEVELS), (7, 1, _TTFT_LEVELS)),
        (0, 1, 2),
        by_p95=True,
    ),
    q.LATENCY_OVERALL.name: RollupRead(
        f"SELECT {_LATENCY_STATS} FROM hourly",
        (),
        ((1, 0, _LATENCY_LEVELS), (4, 1, _TTFT_LEVELS)),
        (),
    ),
    q.ERRORS.name: RollupRead("""SELECT provider, model, error_type, sum(requests) AS requests,
       coalesce(sum(cost_usd), 0) AS spend, sum(input_tokens), sum(output_tokens)
FROM hourly WHERE status = 'error' GROUP BY provider, model, error_type
ORDER BY spend DESC, requests DESC, provider, model, error_type"""),
    q.ANSWERED_PROMPTS.name: RollupRead("""SELECT provider, model, sum(prompt_hash_rows)
FROM hourly WHERE status = 'ok' GROUP BY provider, model HAVING sum(prompt_hash_rows) > 0
ORDER BY provider, model"""),
    q.BATCHABLE.name: RollupRead(f"""SELECT provider, model, feature,
       sum(CASE WHEN {q.FEATURE_KEYWORD} THEN requests ELSE batchable_requests END) AS requests,
       coalesce(sum(CASE WHEN {q.FEATURE_KEYWORD} THEN cost_usd ELSE batchable_cost_usd END), 0)
           AS spend,
       sum(CASE WHEN {q.FEATURE_KEYWORD} THEN input_tokens ELSE batchable_input_tokens END),
       sum(CASE WHEN {q.FEATURE_KEYWORD} THEN output_tokens ELSE batchable_output_tokens END),
       sum(CASE WHEN {q.FEATURE_KEYWORD} THEN requests ELSE tagged_requests END),
       sum(off_hours_requests)
FROM hourly GROUP BY provider, model, feature HAVING requests > 0
ORDER BY spend DESC, requests DESC, provider, model, feature"""),
    q.COVERAGE.name: RollupRead("""SELECT coalesce(sum(requests), 0),
       coalesce(sum(latency_rows), 0),
       coalesce(sum(ttft_rows), 0), sum(CASE WHEN feature <> '' THEN requests ELSE 0 END),
       sum(prompt_hash_rows), sum(prefix_hash_rows), sum(requests - unpriced_requests),
       sum(output_token_rows)
FROM hourly"""),
    q.BOUNDS.name: RollupRead("""SELECT coalesce(sum(requests), 0), min(first_timestamp),
       max(last_timestamp) FROM hourly"""),
    q.NAMES.name: RollupRead("""SELECT provider, model, feature, sum(requests)
FROM hourly GROUP BY provider, model, feature ORDER BY provider, model, feature"""),
    q.HOURLY.name: RollupRead("""SELECT isodow(hour_start) AS weekday, hour(hour_start) AS hour,
       sum(requests), coalesce(sum(cost_usd), 0), sum(input_tokens) + sum(output_tokens)
FROM hourly GROUP BY weekday, hour ORDER BY weekday, hour"""),
}
# the statements whose answer holds percentiles: exact from the rows for a small tenant
WITH_PERCENTILES = frozenset(name for name, read in READS.items() if read.quantiles)


@cache
def statements(
    name: str, where: UsageFilter, edges: bool
) -> tuple[q.LedgerQuery, q.LedgerQuery | None]:
    """The sums statement of `name` and, when it has percentiles, its sketch statement, both
    narrowed by `where` (placeholders: :tenant_id, the period's `Edges` and the filter's; the
    sums read table `edge_hourly`, the sketch `edge_sketch` when the period has partial hours,
    `edges`: see `edge_statements`)."""
    read = READS[name]
    narrow = _narrow(where)
    sums = q.LedgerQuery(f"{name}_rollup", f"WITH {_hourly_cte(narrow, edges)}\n{read.sums}")
    if not read.quantiles:
        return sums, None
    group = ", ".join(read.sketch_group)
    select = f"{group}, " if group else ""
    sketch = q.LedgerQuery(
        f"{name}_sketch",
        f"""WITH {_sketch_cte(narrow, edges)}
SELECT {select}metric, bucket, sum(requests) FROM sketch
GROUP BY {select}metric, bucket""",
    )
    return sums, sketch


def with_quantiles(
    read: RollupRead, rows: list[tuple[Any, ...]], sketched: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """The rows of a rollup read with its quantile columns filled from its sketch statement's
    rows (group columns, metric, bucket, count), in the latency report's order if it has one."""
    width = len(read.sketch_group)
    counts: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
    for row in sketched:
        counts.setdefault(tuple(row[: width + 1]), []).append((row[width + 1], row[width + 2]))
    filled = []
    for row in rows:
        values = list(row)
        key = tuple(row[index] for index in read.key_columns)
        for column, metric, levels in read.quantiles:
            values[column] = quantiles(counts.get((*key, metric), ()), levels)
        filled.append(tuple(values))
    if read.by_p95:
        filled.sort(
            key=lambda r: (-(r[4][1] if r[4] else 0.0), *(r[index] for index in read.key_columns))
        )
    return filled
