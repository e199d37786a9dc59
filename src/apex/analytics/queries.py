"""Every ledger query, written once in DuckDB SQL and transpiled to ClickHouse with sqlglot.

Each statement filters by `:tenant_id` and the half-open period [`:start`, `:end`); the only
way to run one is `render(query, engine, tenant_id=..., start=..., end=...)`, which refuses a
missing tenant and leaves every value to the engine to bind (statement.py). Percentiles are
`quantile_cont`, which ClickHouse computes exactly (and with the same interpolation) as
`quantileExactInclusive`; every ORDER BY is total, so both engines return the same rows in the
same order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.generator import Generator

from apex.analytics.filters import UsageFilter
from apex.analytics.statement import Engine, Statement, Value, clickhouse_type

BATCH_KEYWORDS = (
    "batch",
    "nightly",
    "offline",
    "background",
    "backfill",
    "cron",
    "etl",
    "bulk",
    "scheduled",
    "async",
    "eval",
)
OFF_HOURS_END = 6
RETRY_WINDOW_S = 300


def _scope(table: str = "") -> str:
    """The tenant and period condition of a scan of the rows (`table`: its alias, if any)."""
    prefix = f"{table}." if table else ""
    return (
        f"{prefix}tenant_id = :tenant_id AND {prefix}timestamp >= :start "
        f"AND {prefix}timestamp < :end"
    )


_SCOPE = _scope()


def _group_key(*names: str) -> str:
    """Breakdowns group on one 64-bit hash of their name columns, several times faster than on
    the strings themselves (the same 64-bit hashing that keys every row for dedup); each name
    is then read back with any_value(), and ORDER BY repeats that expression because ClickHouse
    runs with prefer_column_name_to_alias."""
    return f"hash({', '.join(names)})"


def _named(*names: str) -> str:
    return ", ".join(f"any_value({name}) AS {name}" for name in names)


def _by_names(*names: str) -> str:
    return ", ".join(f"any_value({name})" for name in names)


# A batchable call (the rollups count them too): a keyword in its feature or tags, or sent at
# night by no end user. One plain test per keyword: a substring test and a list membership
# test each run several times faster per row than a regular expression with alternatives or
# `list_has_any`.
FEATURE_KEYWORD = (
    "(" + " OR ".join(f"contains(lower(feature), '{word}')" for word in BATCH_KEYWORDS) + ")"
)
TAGS_KEYWORD = "(" + " OR ".join(f"list_contains(tags, '{word}')" for word in BATCH_KEYWORDS) + ")"
KEYWORD = f"({FEATURE_KEYWORD} OR {TAGS_KEYWORD})"
OFF_HOURS = f"(end_user = '' AND hour(timestamp) < {OFF_HOURS_END})"


class _ExactClickHouse(ClickHouse):
    """ClickHouse, with the few functions whose default translation is not exact enough."""

    # sqlglot binds a dialect's generator to a class attribute, which is a class at run time
    class Generator(ClickHouse.Generator):  # type: ignore[misc, valid-type]
        TRANSFORMS = {
            **ClickHouse.Generator.TRANSFORMS,
            exp.PercentileCont: lambda self, e: _exact_quantiles(self, e),
            exp.ArrayOverlaps: lambda self, e: self.func("hasAny", e.this, e.expression),
        }


def _exact_quantiles(generator: Generator, node: exp.PercentileCont) -> str:
    """quantile_cont(x, q) -> quantileExactInclusive(q)(x); a list of levels -> quantiles...
    (one sorted buffer for all levels, as DuckDB does)."""
    levels = node.expression
    column = generator.sql(node, "this")
    if isinstance(levels, exp.Array):
        return (
            f"quantilesExactInclusive({', '.join(generator.sql(e) for e in levels.expressions)})"
            f"({column})"
        )
    return f"quantileExactInclusive({generator.sql(levels)})({column})"


@dataclass(frozen=True)
class LedgerQuery:
    """One named statement in DuckDB SQL, with `:tenant_id`, `:start`, `:end` placeholders."""

    name: str
    sql: str

    @property
    def tree(self) -> exp.Expr:
        return _parse(self.sql)

    def narrowed(self, where: UsageFilter) -> LedgerQuery:
        """The statement with the filter's conditions added to each scan of the tenant's rows
        (every `WHERE` that scopes by tenant and period), or itself when nothing narrows."""
        if not where.clauses():
            return self
        return _narrowed(self, where)


@cache
def _narrowed(query: LedgerQuery, where: UsageFilter) -> LedgerQuery:
    sql = query.sql
    for table in ("", "u"):
        condition = " AND ".join(clause for clause, _values in where.clauses(table))
        scope = _scope(table)
        sql = sql.replace(scope, f"{scope} AND {condition}")
    return LedgerQuery(query.name, sql)


def filter_values(where: UsageFilter) -> dict[str, str]:
    """The values `narrowed(where)` statements need bound."""
    return {name: value for _clause, values in where.clauses() for name, value in values.items()}


@cache
def _parse(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, read="duckdb")


@cache
def _template(
    query: LedgerQuery, engine: Engine, database: str | None, kinds: tuple[tuple[str, str], ...]
) -> tuple[str, tuple[str, ...]]:
    """The statement for `engine` with each `:name` as the engine's placeholder (`kinds`: the
    ClickHouse type each is bound as), and the names it needs.

    Transpiling is the slow part (milliseconds), so it happens once per query, engine and
    parameter types; each run then only binds its values. A statement for DuckDB, which it is
    written for, is not transpiled: only its placeholders change (parsing and writing back a
    summary's statements cost a quarter of a second the first time a process ran them).
    """
    if engine == "duckdb" and not database:
        return _duckdb_placeholders(query.sql)
    names: list[str] = []
    types = dict(kinds)

    def mark(node: exp.Expression) -> exp.Expression:
        if engine == "clickhouse" and isinstance(node, exp.CTE):
            node.set("materialized", None)
        if (
            engine == "clickhouse"
            and isinstance(node, exp.Anonymous)
            and node.name.lower() == "hash"
        ):
            return exp.Anonymous(this="cityHash64", expressions=node.expressions)
        if isinstance(node, exp.Placeholder) and node.name:
            names.append(node.name)
            if engine == "clickhouse" and node.name in types:
                return exp.Placeholder(
                    this=node.name,
                    kind=exp.DataType.build(types[node.name], dialect="clickhouse"),
                )
            return exp.Placeholder(this=node.name)
        if database and isinstance(node, exp.Table) and not node.args.get("db"):
            if node.name in LEDGER_TABLES:
                node.set("db", exp.to_identifier(database))
        return node

    tree = query.tree.copy().transform(mark, copy=False)
    if engine == "clickhouse":
        sql = tree.sql(dialect=_ExactClickHouse) + _CLICKHOUSE_SETTINGS
    else:
        sql = tree.sql(dialect="duckdb")
    return sql, tuple(dict.fromkeys(names))


# a string literal (left as it is), or a `:name` placeholder (not the `::` of a cast, not a
# slice's `a:b`)
_LITERAL_OR_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_]\w*)")


def _duckdb_placeholders(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with each `:name` as DuckDB's `$name`, and the names in order."""
    names: list[str] = []

    def swap(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)
        names.append(match.group(1))
        return f"${match.group(1)}"

    return _LITERAL_OR_PLACEHOLDER.sub(swap, sql), tuple(dict.fromkeys(names))


def render(
    query: LedgerQuery,
    engine: Engine,
    *,
    tenant_id: str,
    start: datetime,
    end: datetime,
    database: str | None = None,
    **values: Value,
) -> Statement:
    """The statement for `engine` with the tenant, the period and `values` to bind: the
    engine binds them, so no value is ever part of the statement's text."""
    if not tenant_id:
        raise ValueError("every ledger query needs the caller's tenant_id")
    bound: dict[str, Value] = {"tenant_id": tenant_id, "start": start, "end": end, **values}
    kinds = (
        tuple(sorted((name, clickhouse_type(value)) for name, value in bound.items()))
        if engine == "clickhouse"
        else ()
    )
    sql, names = _template(query, engine, database, kinds)
    missing = [name for name in names if name not in bound]
    if missing:
        raise ValueError(f"query {query.name} needs a value for :{missing[0]}")
    return Statement.of(sql, {name: bound[name] for name in names})


LEDGER_TABLES = frozenset({"usage"})
# ClickHouse resolves a name to a SELECT alias before a column; SQL (and DuckDB) do the opposite.
_CLICKHOUSE_SETTINGS = " SETTINGS prefer_column_name_to_alias = 1"

# the requests whose model had no price: in every sum of spend, which leaves them out
_UNPRICED = "sum(CASE WHEN cost_source = 'unpriced' THEN 1 ELSE 0 END) AS unpriced_requests"

SUMMARY = LedgerQuery(
    "summary",
    f"""
SELECT count(*) AS requests,
       sum(cost_usd) AS cost_usd,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(cached_input_tokens) AS cached_input_tokens,
       sum(reasoning_tokens) AS reasoning_tokens,
       sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
       {_UNPRICED},
       min(timestamp) AS first_timestamp,
       max(timestamp) AS last_timestamp,
       sum(cache_write_input_tokens) AS cache_write_input_tokens
FROM usage WHERE {_SCOPE}
""",
)

# requests, spend, the four token counts and errors: the shape of every breakdown by model
_USAGE_SUMS = """count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(cached_input_tokens) AS cached_input_tokens,
       sum(reasoning_tokens) AS reasoning_tokens,
       sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,"""

BY_MODEL = LedgerQuery(
    "by_model",
    f"""
SELECT {_named("provider", "model")},
       {_USAGE_SUMS}
       {_UNPRICED},
       quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS latency_quantiles,
       sum(cache_write_input_tokens) AS cache_write_input_tokens
FROM usage WHERE {_SCOPE}
GROUP BY {_group_key("provider", "model")}
ORDER BY spend DESC, requests DESC, {_by_names("provider", "model")}
""",
)

BY_FEATURE = LedgerQuery(
    "by_feature",
    f"""
SELECT feature,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
       quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS latency_quantiles,
       {_UNPRICED}
FROM usage WHERE {_SCOPE}
GROUP BY feature
ORDER BY spend DESC, requests DESC, feature
""",
)

BY_TAG = LedgerQuery(
    "by_tag",
    f"""
SELECT tag,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       {_UNPRICED}
FROM (SELECT UNNEST(tags) AS tag, cost_usd, cost_source FROM usage WHERE {_SCOPE}) AS tagged
GROUP BY tag
ORDER BY spend DESC, requests DESC, tag
""",
)

BY_DAY = LedgerQuery(
    "by_day",
    f"""
SELECT CAST(timestamp AS DATE) AS day,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
       {_UNPRICED}
FROM usage WHERE {_SCOPE}
GROUP BY day
ORDER BY day
""",
)

# spend by day split by model: what the usage page stacks (its day totals are BY_DAY's)
BY_DAY_MODEL = LedgerQuery(
    "by_day_model",
    f"""
SELECT CAST(timestamp AS DATE) AS day,
       {_named("provider", "model")},
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       {_UNPRICED}
FROM usage WHERE {_SCOPE}
GROUP BY day, {_group_key("provider", "model")}
ORDER BY day, spend DESC, requests DESC, {_by_names("provider", "model")}
""",
)

_MIX_GROUP = ("provider", "model", "feature", "operation")
# the key of a model-and-feature group: the mix's sums (from the rows or the rollups) and its
# token percentiles are joined on it
MIX_GROUP_KEY = _group_key(*_MIX_GROUP)

# The sums of each model-and-feature group (served from the rollups where the engine keeps
# them) and its group key, which MODEL_FEATURE_TOKENS keys its token percentiles on.
BY_MODEL_FEATURE = LedgerQuery(
    "by_model_feature",
    f"""
SELECT {_named(*_MIX_GROUP)},
       {_USAGE_SUMS}
       {_UNPRICED},
       {MIX_GROUP_KEY} AS group_key
FROM usage WHERE {_SCOPE}
GROUP BY {MIX_GROUP_KEY}
ORDER BY spend DESC, requests DESC, {_by_names(*_MIX_GROUP)}
""",
)

_LATENCY_STATS = """count(latency_ms) AS requests,
       quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS latency_quantiles,
       max(latency_ms) AS max_latency_ms,
       count(ttft_ms) AS ttft_requests,
       quantile_cont(ttft_ms, [0.5, 0.95]) AS ttft_quantiles"""

LATENCY = LedgerQuery(
    "latency",
    f"""
SELECT {_named("provider", "model", "feature")}, {_LATENCY_STATS}
FROM usage WHERE {_SCOPE} AND latency_ms IS NOT NULL
GROUP BY {_group_key("provider", "model", "feature")}
ORDER BY latency_quantiles[2] DESC, {_by_names("provider", "model", "feature")}
""",
)

LATENCY_OVERALL = LedgerQuery(
    "latency_overall",
    f"""
SELECT {_LATENCY_STATS}
FROM usage WHERE {_SCOPE} AND latency_ms IS NOT NULL
""",
)

ERRORS = LedgerQuery(
    "errors",
    f"""
SELECT provider, model, error_type,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens
FROM usage WHERE {_SCOPE} AND status = 'error'
GROUP BY provider, model, error_type
ORDER BY spend DESC, requests DESC, provider, model, error_type
""",
)

RETRIES = LedgerQuery(
    "retries",
    f"""
WITH calls AS (
  SELECT provider, model, status, cost_usd, timestamp,
         lag(status, 1, '') OVER (PARTITION BY prompt_hash, provider, model
                                  ORDER BY timestamp, row_key) AS previous_status,
         lag(timestamp, 1, timestamp) OVER (PARTITION BY prompt_hash, provider, model
                                            ORDER BY timestamp, row_key) AS previous_timestamp
  FROM usage WHERE {_SCOPE} AND prompt_hash <> ''
    AND prompt_hash IN (SELECT prompt_hash FROM usage
                        WHERE {_SCOPE} AND status = 'error' AND prompt_hash <> '')
)
SELECT provider, model,
       count(*) AS retries,
       sum(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS recovered,
       coalesce(sum(cost_usd), 0) AS spend
FROM calls
WHERE previous_status = 'error'
  AND date_diff('second', previous_timestamp, timestamp) <= {RETRY_WINDOW_S}
GROUP BY provider, model
ORDER BY spend DESC, retries DESC, provider, model
""",
)

# an answered call of a known prompt: those a duplicate could have been served from a cache
ANSWERED_PROMPT = "prompt_hash <> '' AND status = 'ok'"
# a prompt's 64-bit key, cheaper to group and join on than its hash's text
PROMPT_KEY = "hash(prompt_hash)"
# the tenant and period condition of a scan of the rows (or of a table with their columns)
SCOPE = _SCOPE
_OK_HASHED = f"{_SCOPE} AND {ANSWERED_PROMPT}"


def duplicates(name: str, calls: str) -> LedgerQuery:
    """The duplicate-prompts statement over `calls`: a statement of the period's answered calls
    of (at least) every prompt answered more than once in it, as (prompt_key, prompt_hash,
    provider, model, cost_usd). Most prompts are unique, so only those calls are grouped; the
    per-model figures (kind 'model') and the most repeated prompts (kind 'prompt') come from
    the same groups (ANSWERED_PROMPTS counts the calls they are out of)."""
    return LedgerQuery(
        name,
        f"""
WITH prompts AS MATERIALIZED (
  SELECT prompt_key, min(prompt_hash) AS prompt_hash, provider, model,
         count(*) AS calls,
         coalesce(sum(cost_usd), 0) AS spend,
         coalesce(max(cost_usd), 0) AS kept_cost
  FROM ({calls}) AS candidates
  GROUP BY prompt_key, provider, model
)
SELECT 'model' AS kind, provider, model, '' AS prompt_hash,
       sum(CASE WHEN calls > 1 THEN 1 ELSE 0 END) AS repeated_prompts,
       sum(calls - 1) AS duplicate_requests,
       sum(CASE WHEN calls > 1 THEN spend - kept_cost ELSE 0 END) AS amount
FROM prompts GROUP BY provider, model
UNION ALL
SELECT * FROM (
  SELECT 'prompt' AS kind, provider, model, prompt_hash, calls, calls - 1 AS duplicate_requests,
         spend AS amount
  FROM prompts
  WHERE calls > 1
  ORDER BY calls DESC, spend DESC, prompt_hash, provider, model
  LIMIT :limit
) AS top_prompts
""",
    )


# the calls of the prompts answered more than once, found by grouping the period's calls (on
# an engine that keeps no copy of them, or before it is built: prompt_repeats.py)
DUPLICATES = duplicates(
    "duplicates",
    f"""SELECT {PROMPT_KEY} AS prompt_key, prompt_hash, provider, model, cost_usd
  FROM usage WHERE {_OK_HASHED} AND {PROMPT_KEY} IN (
    SELECT {PROMPT_KEY} AS repeated_key FROM usage WHERE {_OK_HASHED}
    GROUP BY repeated_key HAVING count(*) > 1
  )""",
)

# the answered calls of known prompts per model: what duplicates are counted out of
ANSWERED_PROMPTS = LedgerQuery(
    "answered_prompts",
    f"""
SELECT {_named("provider", "model")}, count(*) AS calls
FROM usage WHERE {_OK_HASHED}
GROUP BY {_group_key("provider", "model")}
ORDER BY {_by_names("provider", "model")}
""",
)

PREFIXES = LedgerQuery(
    "prefixes",
    f"""
WITH groups AS (
  SELECT {_named("provider", "model")},
         count(*) AS calls,
         sum(input_tokens) AS input_tokens,
         sum(cached_input_tokens) AS cached_input_tokens,
         max(prefix_tokens) AS prefix_tokens,
         min(input_tokens) AS shortest_input
  FROM usage WHERE {_SCOPE} AND prefix_hash <> ''
  GROUP BY {_group_key("prefix_hash", "provider", "model")}
)
SELECT provider, model,
       count(*) AS prefixes,
       sum(calls) AS requests,
       sum(input_tokens) AS input_tokens,
       sum(cached_input_tokens) AS cached_input_tokens,
       sum((calls - 1) * CASE WHEN prefix_tokens > 0 THEN prefix_tokens ELSE shortest_input END)
           AS repeated_prefix_tokens
FROM groups
WHERE calls > 1
GROUP BY provider, model
ORDER BY repeated_prefix_tokens DESC, requests DESC, provider, model
""",
)

_TOKEN_LEVELS = (0.5, 0.95, 0.99)


def _order_statistic(level: float, edge: str) -> str:
    """The value at the `edge` ('floor' or 'ceil') of the 0-based rank `level` * (n - 1) of a
    group's sorted values, read from its histogram (`upto`: values at most this one)."""
    return f"min(tokens) FILTER (WHERE upto > {edge}((total - 1) * CAST({level} AS DOUBLE)))"


def _interpolated(level: float) -> str:
    """quantile_cont's value at `level`: between the two order statistics around the rank,
    in doubles, as quantile_cont computes it."""
    rank = f"(any_value(total) - 1) * CAST({level} AS DOUBLE)"
    low = f"CAST({_order_statistic(level, 'floor')} AS DOUBLE)"
    high = f"CAST({_order_statistic(level, 'ceil')} AS DOUBLE)"
    return f"{low} + ({rank} - floor({rank})) * ({high} - {low})"


# Token percentiles and the calls above each group's p95, from one pass over the rows: a
# histogram of each group's token counts (far fewer distinct counts than rows), its running
# totals, then the order statistics and the outliers' sums from it. quantile_cont over the
# rows and a second pass joining them to the thresholds cost twice as much at 10M rows.
TOKEN_OUTLIERS = {
    kind: LedgerQuery(
        f"{kind}_token_outliers",
        f"""
WITH histogram AS (
  SELECT {_group_key("provider", "model", "feature")} AS group_key,
         {kind}_tokens AS tokens,
         count(*) AS calls,
         coalesce(sum(cost_usd), 0) AS cost_usd
  FROM usage WHERE {_SCOPE}
  GROUP BY group_key, tokens
),
running AS (
  SELECT *,
         sum(calls) OVER (PARTITION BY group_key ORDER BY tokens
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS upto,
         sum(calls) OVER (PARTITION BY group_key) AS total
  FROM histogram
),
names AS (
  SELECT {_group_key("provider", "model", "feature")} AS group_key,
         {_named("provider", "model", "feature")}
  FROM usage WHERE {_SCOPE}
  GROUP BY group_key
),
stats AS (
  SELECT group_key, any_value(total) AS requests,
         [{", ".join(_interpolated(level) for level in _TOKEN_LEVELS)}] AS token_quantiles,
         max(tokens) AS max_tokens
  FROM running
  GROUP BY group_key
  HAVING any_value(total) >= :min_requests
),
thresholds AS (
  SELECT s.*, n.provider, n.model, n.feature,
         CAST(ceil(round(s.token_quantiles[2], 6)) AS BIGINT) AS threshold
  FROM stats AS s JOIN names AS n USING (group_key)
),
outliers AS (
  SELECT t.group_key AS group_key,
         sum(r.calls) AS outlier_requests,
         sum(r.calls * r.tokens) AS outlier_tokens,
         sum(r.cost_usd) AS outlier_cost_usd
  FROM running AS r JOIN thresholds AS t ON r.group_key = t.group_key
  WHERE r.tokens > t.threshold
  GROUP BY t.group_key
)
SELECT t.provider, t.model, t.feature, t.requests, t.token_quantiles, t.max_tokens,
       t.threshold,
       coalesce(o.outlier_requests, 0) AS outlier_requests,
       coalesce(o.outlier_tokens, 0) AS outlier_tokens,
       coalesce(o.outlier_cost_usd, 0) AS outlier_cost_usd
FROM thresholds AS t
LEFT JOIN outliers AS o ON t.group_key = o.group_key
ORDER BY outlier_cost_usd DESC, outlier_requests DESC, t.provider, t.model, t.feature
""",
    )
    for kind in ("input", "output")
}

# The input and output token p50 and p95 of each model-and-feature group (BY_MODEL_FEATURE's
# group key), exact, from histograms of the two counts as TOKEN_OUTLIERS reads them: each
# histogram costs a pass over the rows, but quantile_cont over the rows costs more than both.
MIX_TOKEN_LEVELS = (0.5, 0.95)
MODEL_FEATURE_TOKENS = LedgerQuery(
    "model_feature_tokens",
    f"""
WITH histogram AS (
  SELECT 'input' AS kind, group_key, tokens, count(*) AS calls
  FROM (SELECT {MIX_GROUP_KEY} AS group_key, input_tokens AS tokens
        FROM usage WHERE {_SCOPE}) AS counts
  GROUP BY group_key, tokens
  UNION ALL
  SELECT 'output' AS kind, group_key, tokens, count(*) AS calls
  FROM (SELECT {MIX_GROUP_KEY} AS group_key, output_tokens AS tokens
        FROM usage WHERE {_SCOPE}) AS counts
  GROUP BY group_key, tokens
),
running AS (
  SELECT *,
         sum(calls) OVER (PARTITION BY kind, group_key ORDER BY tokens
                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS upto,
         sum(calls) OVER (PARTITION BY kind, group_key) AS total
  FROM histogram
)
SELECT group_key, kind,
       [{", ".join(_interpolated(level) for level in MIX_TOKEN_LEVELS)}] AS token_quantiles
FROM running
GROUP BY group_key, kind
ORDER BY group_key, kind
""",
)

HOURLY = LedgerQuery(
    "hourly",
    f"""
SELECT isodow(timestamp) AS weekday,
       hour(timestamp) AS hour,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens + output_tokens) AS tokens
FROM usage WHERE {_SCOPE}
GROUP BY weekday, hour
ORDER BY weekday, hour
""",
)

BATCHABLE = LedgerQuery(
    "batchable",
    f"""
SELECT provider, model, feature,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(CASE WHEN {KEYWORD} THEN 1 ELSE 0 END) AS tagged_requests,
       sum(CASE WHEN {OFF_HOURS} THEN 1 ELSE 0 END) AS off_hours_requests
FROM usage WHERE {_SCOPE} AND ({KEYWORD} OR {OFF_HOURS})
GROUP BY provider, model, feature
ORDER BY spend DESC, requests DESC, provider, model, feature
""",
)

COVERAGE = LedgerQuery(
    "coverage",
    f"""
SELECT count(*) AS requests,
       count(latency_ms) AS latency_rows,
       count(ttft_ms) AS ttft_rows,
       sum(CASE WHEN feature <> '' THEN 1 ELSE 0 END) AS feature_rows,
       sum(CASE WHEN prompt_hash <> '' THEN 1 ELSE 0 END) AS prompt_hash_rows,
       sum(CASE WHEN prefix_hash <> '' THEN 1 ELSE 0 END) AS prefix_hash_rows,
       sum(CASE WHEN cost_source <> 'unpriced' THEN 1 ELSE 0 END) AS priced_rows,
       sum(CASE WHEN output_tokens > 0 THEN 1 ELSE 0 END) AS output_token_rows
FROM usage WHERE {_SCOPE}
""",
)

BOUNDS = LedgerQuery(
    "bounds",
    f"""
SELECT count(*) AS requests, min(timestamp) AS first_timestamp, max(timestamp) AS last_timestamp
FROM usage WHERE {_SCOPE}
""",
)

# the names a tenant's rows use, so a question's names can be matched against them
NAMES = LedgerQuery(
    "names",
    f"""
SELECT {_named("provider", "model", "feature")}, count(*) AS requests
FROM usage WHERE {_SCOPE}
GROUP BY {_group_key("provider", "model", "feature")}
ORDER BY {_by_names("provider", "model", "feature")}
""",
)

ALL_QUERIES: tuple[LedgerQuery, ...] = (
    SUMMARY,
    BY_MODEL,
    BY_FEATURE,
    BY_TAG,
    BY_DAY,
    BY_DAY_MODEL,
    BY_MODEL_FEATURE,
    MODEL_FEATURE_TOKENS,
    LATENCY,
    LATENCY_OVERALL,
    ERRORS,
    RETRIES,
    DUPLICATES,
    ANSWERED_PROMPTS,
    PREFIXES,
    *TOKEN_OUTLIERS.values(),
    HOURLY,
    BATCHABLE,
    COVERAGE,
    BOUNDS,
    NAMES,
)
