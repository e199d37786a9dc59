"""Every ledger query, written once in DuckDB SQL and transpiled to ClickHouse with sqlglot.

Each statement filters by `:tenant_id` and the half-open period [`:start`, `:end`); the only
way to run one is `render(query, engine, tenant_id=..., start=..., end=...)`, which refuses a
missing tenant. Percentiles are `quantile_cont`, which ClickHouse computes exactly (and with the
same interpolation) as `quantileExactInclusive`; every ORDER BY is total, so both engines
return the same rows in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse

Engine = Literal["duckdb", "clickhouse"]

BATCH_KEYWORDS = ("batch", "nightly", "offline", "background", "backfill", "cron", "etl",
                  "bulk", "scheduled", "async", "eval")
OFF_HOURS_END = 6
RETRY_WINDOW_S = 300

_SCOPE = "tenant_id = :tenant_id AND timestamp >= :start AND timestamp < :end"
_KEYWORD = (f"(regexp_matches(lower(feature), '{'|'.join(BATCH_KEYWORDS)}') "
            f"OR list_has_any(tags, [{', '.join(repr(word) for word in BATCH_KEYWORDS)}]))")
_OFF_HOURS = f"(end_user = '' AND hour(timestamp) < {OFF_HOURS_END})"


class _ExactClickHouse(ClickHouse):
    """ClickHouse, with the few functions whose default translation is not exact enough."""

    class Generator(ClickHouse.Generator):
        TRANSFORMS = {
            **ClickHouse.Generator.TRANSFORMS,
            exp.PercentileCont: lambda self, e: (
                f"quantileExactInclusive({self.sql(e, 'expression')})({self.sql(e, 'this')})"),
            exp.ArrayOverlaps: lambda self, e: self.func("hasAny", e.this, e.expression),
        }


@dataclass(frozen=True)
class Query:
    name: str
    sql: str

    @property
    def tree(self) -> exp.Expression:
        return _parse(self.sql)


@cache
def _parse(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="duckdb")


def _timestamp_literal(value: datetime, engine: Engine) -> exp.Expression:
    text = value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if engine == "clickhouse":
        return exp.Anonymous(this="toDateTime64", expressions=[
            exp.Literal.string(text), exp.Literal.number(6), exp.Literal.string("UTC")])
    return exp.cast(exp.Literal.string(text), exp.DataType.build("TIMESTAMP"))


def render(query: Query, engine: Engine, *, tenant_id: str, start: datetime, end: datetime,
           database: str | None = None, **values: object) -> str:
    """The statement for `engine`, with the tenant and period bound as literals.

    Binding goes through the syntax tree (sqlglot quotes every literal), never through string
    formatting, so a hostile tenant id or argument cannot change the statement.
    """
    if not tenant_id:
        raise ValueError("every ledger query needs the caller's tenant_id")
    bound = {"tenant_id": exp.Literal.string(tenant_id),
             "start": _timestamp_literal(start, engine),
             "end": _timestamp_literal(end, engine),
             **{name: exp.convert(value) for name, value in values.items()}}

    def bind(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name:
            if node.name not in bound:
                raise ValueError(f"query {query.name} needs a value for :{node.name}")
            return bound[node.name].copy()
        if database and isinstance(node, exp.Table) and not node.args.get("db"):
            if node.name in LEDGER_TABLES:
                node = node.copy()
                node.set("db", exp.to_identifier(database))
        return node

    tree = query.tree.copy().transform(bind)
    if engine == "clickhouse":
        return tree.sql(dialect=_ExactClickHouse) + _CLICKHOUSE_SETTINGS
    return tree.sql(dialect="duckdb")


LEDGER_TABLES = frozenset({"usage"})
# ClickHouse resolves a name to a SELECT alias before a column; SQL (and DuckDB) do the opposite.
_CLICKHOUSE_SETTINGS = " SETTINGS prefer_column_name_to_alias = 1"

SUMMARY = Query("summary", f"""
SELECT count(*) AS requests,
       sum(cost_usd) AS cost_usd,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(cached_input_tokens) AS cached_input_tokens,
       sum(reasoning_tokens) AS reasoning_tokens,
       sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
       sum(CASE WHEN cost_source = 'unpriced' THEN 1 ELSE 0 END) AS unpriced_requests,
       min(timestamp) AS first_timestamp,
       max(timestamp) AS last_timestamp
FROM usage WHERE {_SCOPE}
""")

BY_MODEL = Query("by_model", f"""
SELECT provider, model,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(cached_input_tokens) AS cached_input_tokens,
       sum(reasoning_tokens) AS reasoning_tokens,
       sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
       sum(CASE WHEN cost_source = 'unpriced' THEN 1 ELSE 0 END) AS unpriced_requests,
       quantile_cont(latency_ms, 0.5) AS p50_latency_ms,
       quantile_cont(latency_ms, 0.95) AS p95_latency_ms
FROM usage WHERE {_SCOPE}
GROUP BY provider, model
ORDER BY spend DESC, requests DESC, provider, model
""")

BY_FEATURE = Query("by_feature", f"""
SELECT feature,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
       quantile_cont(latency_ms, 0.5) AS p50_latency_ms,
       quantile_cont(latency_ms, 0.95) AS p95_latency_ms
FROM usage WHERE {_SCOPE}
GROUP BY feature
ORDER BY spend DESC, requests DESC, feature
""")

BY_TAG = Query("by_tag", f"""
SELECT tag,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend
FROM (SELECT UNNEST(tags) AS tag, cost_usd FROM usage WHERE {_SCOPE}) AS tagged
GROUP BY tag
ORDER BY spend DESC, requests DESC, tag
""")

BY_DAY = Query("by_day", f"""
SELECT CAST(timestamp AS DATE) AS day,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors
FROM usage WHERE {_SCOPE}
GROUP BY day
ORDER BY day
""")

BY_MODEL_FEATURE = Query("by_model_feature", f"""
SELECT provider, model, feature, operation,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(cached_input_tokens) AS cached_input_tokens,
       sum(reasoning_tokens) AS reasoning_tokens,
       sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
       quantile_cont(input_tokens, 0.5) AS p50_input_tokens,
       quantile_cont(output_tokens, 0.5) AS p50_output_tokens,
       quantile_cont(output_tokens, 0.95) AS p95_output_tokens
FROM usage WHERE {_SCOPE}
GROUP BY provider, model, feature, operation
ORDER BY spend DESC, requests DESC, provider, model, feature, operation
""")

LATENCY = Query("latency", f"""
SELECT provider, model, feature,
       count(latency_ms) AS requests,
       quantile_cont(latency_ms, 0.5) AS p50_latency_ms,
       quantile_cont(latency_ms, 0.95) AS p95_latency_ms,
       quantile_cont(latency_ms, 0.99) AS p99_latency_ms,
       max(latency_ms) AS max_latency_ms,
       count(ttft_ms) AS ttft_requests,
       quantile_cont(ttft_ms, 0.5) AS p50_ttft_ms,
       quantile_cont(ttft_ms, 0.95) AS p95_ttft_ms
FROM usage WHERE {_SCOPE} AND latency_ms IS NOT NULL
GROUP BY provider, model, feature
ORDER BY p95_latency_ms DESC, provider, model, feature
""")

LATENCY_OVERALL = Query("latency_overall", f"""
SELECT count(latency_ms) AS requests,
       quantile_cont(latency_ms, 0.5) AS p50_latency_ms,
       quantile_cont(latency_ms, 0.95) AS p95_latency_ms,
       quantile_cont(latency_ms, 0.99) AS p99_latency_ms,
       max(latency_ms) AS max_latency_ms,
       count(ttft_ms) AS ttft_requests,
       quantile_cont(ttft_ms, 0.5) AS p50_ttft_ms,
       quantile_cont(ttft_ms, 0.95) AS p95_ttft_ms
FROM usage WHERE {_SCOPE} AND latency_ms IS NOT NULL
""")

ERRORS = Query("errors", f"""
SELECT provider, model, error_type,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens
FROM usage WHERE {_SCOPE} AND status = 'error'
GROUP BY provider, model, error_type
ORDER BY spend DESC, requests DESC, provider, model, error_type
""")

RETRIES = Query("retries", f"""
WITH calls AS (
  SELECT provider, model, status, cost_usd, timestamp,
         lag(status, 1, '') OVER (PARTITION BY prompt_hash, provider, model
                                  ORDER BY timestamp, row_key) AS previous_status,
         lag(timestamp, 1, timestamp) OVER (PARTITION BY prompt_hash, provider, model
                                            ORDER BY timestamp, row_key) AS previous_timestamp
  FROM usage WHERE {_SCOPE} AND prompt_hash <> ''
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
""")

DUPLICATES = Query("duplicates", f"""
WITH prompts AS (
  SELECT prompt_hash, provider, model,
         count(*) AS calls,
         coalesce(sum(cost_usd), 0) AS spend,
         coalesce(max(cost_usd), 0) AS kept_cost,
         sum(input_tokens) AS input_tokens,
         sum(output_tokens) AS output_tokens
  FROM usage WHERE {_SCOPE} AND prompt_hash <> '' AND status = 'ok'
  GROUP BY prompt_hash, provider, model
)
SELECT provider, model,
       sum(calls) AS hashed_requests,
       count(*) AS distinct_prompts,
       sum(CASE WHEN calls > 1 THEN 1 ELSE 0 END) AS repeated_prompts,
       sum(calls - 1) AS duplicate_requests,
       sum(CASE WHEN calls > 1 THEN spend - kept_cost ELSE 0 END) AS duplicate_cost_usd
FROM prompts
GROUP BY provider, model
ORDER BY duplicate_cost_usd DESC, duplicate_requests DESC, provider, model
""")

TOP_DUPLICATES = Query("top_duplicates", f"""
SELECT prompt_hash, provider, model,
       count(*) AS calls,
       coalesce(sum(cost_usd), 0) AS spend
FROM usage WHERE {_SCOPE} AND prompt_hash <> '' AND status = 'ok'
GROUP BY prompt_hash, provider, model
HAVING count(*) > 1
ORDER BY calls DESC, spend DESC, prompt_hash, provider, model
LIMIT :limit
""")

PREFIXES = Query("prefixes", f"""
WITH groups AS (
  SELECT prefix_hash, provider, model,
         count(*) AS calls,
         sum(input_tokens) AS input_tokens,
         sum(cached_input_tokens) AS cached_input_tokens,
         max(prefix_tokens) AS prefix_tokens,
         min(input_tokens) AS shortest_input
  FROM usage WHERE {_SCOPE} AND prefix_hash <> ''
  GROUP BY prefix_hash, provider, model
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
""")

TOKEN_OUTLIERS = {
    kind: Query(f"{kind}_token_outliers", f"""
WITH stats AS (
  SELECT provider, model, feature,
         count(*) AS requests,
         quantile_cont({kind}_tokens, 0.5) AS p50_tokens,
         quantile_cont({kind}_tokens, 0.95) AS p95_tokens,
         quantile_cont({kind}_tokens, 0.99) AS p99_tokens,
         max({kind}_tokens) AS max_tokens,
         CAST(ceil(round(quantile_cont({kind}_tokens, 0.95), 6)) AS BIGINT) AS threshold
  FROM usage WHERE {_SCOPE}
  GROUP BY provider, model, feature
  HAVING count(*) >= :min_requests
),
outliers AS (
  SELECT u.provider AS provider, u.model AS model, u.feature AS feature,
         count(*) AS outlier_requests,
         sum(u.{kind}_tokens) AS outlier_tokens,
         coalesce(sum(u.cost_usd), 0) AS outlier_cost_usd
  FROM usage AS u
  JOIN stats AS s ON u.provider = s.provider AND u.model = s.model AND u.feature = s.feature
  WHERE u.tenant_id = :tenant_id AND u.timestamp >= :start AND u.timestamp < :end
    AND u.{kind}_tokens > s.threshold
  GROUP BY u.provider, u.model, u.feature
)
SELECT s.provider, s.model, s.feature, s.requests, s.p50_tokens, s.p95_tokens, s.p99_tokens,
       s.max_tokens, s.threshold,
       coalesce(o.outlier_requests, 0) AS outlier_requests,
       coalesce(o.outlier_tokens, 0) AS outlier_tokens,
       coalesce(o.outlier_cost_usd, 0) AS outlier_cost_usd
FROM stats AS s
LEFT JOIN outliers AS o ON s.provider = o.provider AND s.model = o.model AND s.feature = o.feature
ORDER BY outlier_cost_usd DESC, outlier_requests DESC, s.provider, s.model, s.feature
""")
    for kind in ("input", "output")
}

HOURLY = Query("hourly", f"""
SELECT isodow(timestamp) AS weekday,
       hour(timestamp) AS hour,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens + output_tokens) AS tokens
FROM usage WHERE {_SCOPE}
GROUP BY weekday, hour
ORDER BY weekday, hour
""")

BATCHABLE = Query("batchable", f"""
SELECT provider, model, feature,
       count(*) AS requests,
       coalesce(sum(cost_usd), 0) AS spend,
       sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens,
       sum(CASE WHEN {_KEYWORD} THEN 1 ELSE 0 END) AS tagged_requests,
       sum(CASE WHEN {_OFF_HOURS} THEN 1 ELSE 0 END) AS off_hours_requests
FROM usage WHERE {_SCOPE} AND ({_KEYWORD} OR {_OFF_HOURS})
GROUP BY provider, model, feature
ORDER BY spend DESC, requests DESC, provider, model, feature
""")

BOUNDS = Query("bounds", f"""
SELECT count(*) AS requests, min(timestamp) AS first_timestamp, max(timestamp) AS last_timestamp
FROM usage WHERE {_SCOPE}
""")

ALL_QUERIES: tuple[Query, ...] = (
    SUMMARY, BY_MODEL, BY_FEATURE, BY_TAG, BY_DAY, BY_MODEL_FEATURE, LATENCY, LATENCY_OVERALL,
    ERRORS, RETRIES, DUPLICATES, TOP_DUPLICATES, PREFIXES, *TOKEN_OUTLIERS.values(), HOURLY,
    BATCHABLE, BOUNDS,
)
