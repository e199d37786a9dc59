"""Text columns to ledger rows: parse, validate, price and key every row, in vectorized SQL.

The row key is DuckDB's 64-bit `hash()` of the normalized values (not the tenant, not the
upload, not a catalog price): the same call always gets the same key, whichever file or format
it arrives in. The key function is pinned by a test, so an engine upgrade that changed it
could not silently break re-upload dedup.

Every importer hands over the same thing, a table of text columns named after the ledger fields
plus the source line of each row, so the rules for timestamps, token counts, statuses and
prices live here once. The work runs in a private in-memory DuckDB connection: it is fast
(columnar, no per-row Python), and it is the same on the DuckDB and the ClickHouse ledger,
which only ever receive finished rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from apex.analytics.duckdb_arrow import arrow_result
from apex.analytics.pricing import MAX_INPUT, MIN_INPUT, ModelPrice, normalize_provider
from apex.analytics.schema import (
    COLUMN_NAMES,
    COST_PRECISION,
    COST_SCALE,
    INPUT_EXCLUDES_CACHE,
    MAX_CALL_COST,
    RAW_FIELDS,
)

LINE = "_line"
ERROR = "_error"
TOTAL_ONLY = (
    "total_tokens: a total alone cannot be priced, input and output tokens have "
    "different prices; give input_tokens and output_tokens (or prompt_tokens and "
    "completion_tokens)"
)
MAX_REPORTED_ERRORS = 50

PriceResolver = Callable[[str, str], ModelPrice | None]

_MACROS = r"""
CREATE MACRO apex_quote(v) AS chr(39) || left(CAST(v AS VARCHAR), 60) || chr(39);
CREATE MACRO apex_int(v) AS CASE WHEN regexp_full_match(v, '\+?[0-9]{1,15}(\.0*)?')
    THEN TRY_CAST(v AS BIGINT) END;
CREATE MACRO apex_epoch_micros(n) AS CAST(floor(CASE
    WHEN abs(n) < 1e11 THEN n * 1000000
    WHEN abs(n) < 1e14 THEN n * 1000
    WHEN abs(n) < 1e17 THEN n
    ELSE n / 1000 END) AS BIGINT);
CREATE MACRO apex_epoch_whole_micros(n) AS CAST(floor(CASE
    WHEN abs(n) < 1e11 THEN CAST(n * 1000000 AS DOUBLE)
    WHEN abs(n) < 1e14 THEN CAST(n * 1000 AS DOUBLE)
    WHEN abs(n) < 1e17 THEN CAST(n AS DOUBLE)
    ELSE CAST(n AS DOUBLE) / 1000.0 END) AS BIGINT);
CREATE MACRO apex_ts(v) AS CASE
    WHEN v IS NULL THEN NULL
    WHEN regexp_full_match(v, '[0-9]{1,19}') AND TRY_CAST(v AS BIGINT) IS NOT NULL
        THEN make_timestamp(apex_epoch_whole_micros(TRY_CAST(v AS BIGINT)))
    WHEN regexp_full_match(v, '-?[0-9]{1,20}(\.[0-9]{1,9})?')
        THEN make_timestamp(apex_epoch_micros(CAST(v AS DECIMAL(38, 9))))
    ELSE coalesce(
        timezone('UTC', TRY_CAST(v AS TIMESTAMPTZ)),
        timezone('UTC', try_strptime(v, [
            '%a, %d %b %Y %H:%M:%S %z', '%d %b %Y %H:%M:%S %z', '%Y%m%dT%H%M%S%z',
            '%Y-%m-%d %H:%M:%S %z', '%Y-%m-%dT%H:%M:%S.%f %z'])),
        try_strptime(v, [
            '%a, %d %b %Y %H:%M:%S GMT', '%a, %d %b %Y %H:%M:%S UTC', '%Y%m%dT%H%M%SZ',
            '%Y%m%dT%H%M%S', '%d %b %Y %H:%M:%S', '%Y/%m/%d %H:%M:%S', '%Y/%m/%d %H:%M']))
    END;
CREATE MACRO apex_ms(v) AS TRY_CAST(v AS DOUBLE);
"""

_OK_WORDS = (
    "ok",
    "success",
    "succeeded",
    "successful",
    "completed",
    "complete",
    "true",
    "1",
    "yes",
    "unset",
    "status_code_unset",
    "status_code_ok",
    "done",
    "finished",
)
_ERROR_WORDS = (
    "error",
    "failure",
    "failed",
    "fail",
    "false",
    "0",
    "no",
    "timeout",
    "timed_out",
    "cancelled",
    "canceled",
    "exception",
    "rate_limited",
    "status_code_error",
    "aborted",
)
_ERROR_KINDS = ("timeout", "timed_out", "cancelled", "canceled", "rate_limited", "aborted")
_COUNTS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "reasoning_tokens",
    "prefix_tokens",
)
_DURATIONS = (("latency_ms", "milliseconds"), ("latency_s", "seconds"), ("ttft_ms", "milliseconds"))
_COST = f"DECIMAL({COST_PRECISION}, {COST_SCALE})"
# Integer arithmetic in picodollars (1e-12 USD, the ledger's cost scale) is exact when every
# price is a whole number of picodollars per token (at most six decimals per million), and many
# times faster than 38-digit decimals. Token counts are 64-bit and prices under 2^31, so the
# 128-bit products and their sum cannot overflow. A batch with any other price uses decimals.
_PICO_PER_TOKEN_BOUND = 2**31
_PRICE_PARTS = ("input", "cached", "cache_write", "output", "reasoning")
_FRESH_INPUT = "p.input_tokens - p.cached_input_tokens - p.cache_write_input_tokens"
_PICO_COST = f"""CAST(
      CAST({_FRESH_INPUT} AS HUGEINT) * r.input_pico
      + CAST(p.cached_input_tokens AS HUGEINT) * r.cached_pico
      + CAST(p.cache_write_input_tokens AS HUGEINT) * r.cache_write_pico
      + CAST(p.output_tokens - p.reasoning_tokens AS HUGEINT) * r.output_pico
      + CAST(p.reasoning_tokens AS HUGEINT) * r.reasoning_pico AS DECIMAL(38, 0))
      * CAST(0.000000000001 AS {_COST})"""
_DECIMAL_COST = f"""
      CAST({_FRESH_INPUT} AS DECIMAL(18, 0)) * r.input_per_token
      + CAST(p.cached_input_tokens AS DECIMAL(18, 0)) * r.cached_per_token
      + CAST(p.cache_write_input_tokens AS DECIMAL(18, 0)) * r.cache_write_per_token
      + CAST(p.output_tokens - p.reasoning_tokens AS DECIMAL(18, 0)) * r.output_per_token
      + CAST(p.reasoning_tokens AS DECIMAL(18, 0)) * r.reasoning_per_token"""


def _words(words: tuple[str, ...]) -> str:
    return ", ".join(f"'{word}'" for word in words)


def _count_checks() -> str:
    return "\n".join(
        f"      WHEN {name} IS NOT NULL AND n_{name} IS NULL THEN '{name}: expected a whole "
        f"number >= 0, got ' || apex_quote({name})"
        for name in _COUNTS
    )


def _duration_checks() -> str:
    """Finite in milliseconds too: an infinite or NaN latency would make every later answer
    that carries it impossible to send as JSON."""
    return "\n".join(
        f"      WHEN {name} IS NOT NULL AND NOT coalesce(isfinite(d_{name} * "
        f"{1000 if unit == 'seconds' else 1}) AND d_{name} >= 0, false) THEN '{name}: "
        f"expected {unit} >= 0, got ' || apex_quote({name})"
        for name, unit in _DURATIONS
    )


# A file has few distinct tag strings: each is split into a sorted list once, then joined.
_PARSE_CTES = f"""
WITH tag_lists AS (
  SELECT tags AS tags_text,
    CASE
      WHEN starts_with(tags, '[')
          THEN coalesce(list_sort(list_distinct([lower(trim(CAST(x AS VARCHAR)))
                        FOR x IN TRY_CAST(TRY_CAST(tags AS JSON) AS VARCHAR[])
                        IF trim(CAST(x AS VARCHAR)) <> ''])), [])
      ELSE list_sort(list_distinct([lower(trim(x)) FOR x IN
                     string_split_regex(tags, '[,;|]') IF trim(x) <> '']))
    END AS tag_list
  FROM (SELECT DISTINCT tags FROM raw_batch WHERE tags IS NOT NULL) AS distinct_tags
),
typed AS (
  SELECT *,
    apex_ts(timestamp) AS ts,
    CASE WHEN end_time IS NOT NULL THEN apex_ts(end_time) END AS end_ts,
    CASE WHEN first_token_time IS NOT NULL THEN apex_ts(first_token_time) END AS first_ts,
    {", ".join(f"apex_int({name}) AS n_{name}" for name in _COUNTS)},
    {", ".join(f"apex_ms({name}) AS d_{name}" for name, _ in _DURATIONS)},
    TRY_CAST(cost_usd AS {_COST}) AS file_cost,
    lower(coalesce(status, '')) AS status_raw,
    lower(coalesce(operation, '')) AS operation_raw,
    left(coalesce(error_type, ''), 200) AS error_type_raw
  FROM raw_batch
),
checked AS (
  SELECT *,
    CASE WHEN output_tokens IS NULL AND total_tokens IS NOT NULL
         THEN coalesce(n_total_tokens, 0) - coalesce(n_input_tokens, 0)
         ELSE coalesce(n_output_tokens, 0) END AS output_count,
    CASE WHEN input_tokens IS NULL AND output_tokens IS NOT NULL AND total_tokens IS NOT NULL
             THEN coalesce(n_total_tokens, 0) - coalesce(n_output_tokens, 0)
         WHEN {INPUT_EXCLUDES_CACHE} = 'true'
             THEN coalesce(n_input_tokens, 0) + coalesce(n_cached_input_tokens, 0)
                  + coalesce(n_cache_write_input_tokens, 0)
         ELSE coalesce(n_input_tokens, 0) END AS input_count,
    CASE
      WHEN timestamp IS NULL THEN 'timestamp: missing'
      WHEN ts IS NULL
          THEN 'timestamp: not a date and time I can read, got ' || apex_quote(timestamp)
          || ' (use ISO 8601, e.g. 2024-05-01T10:00:00Z, or epoch seconds/milliseconds)'
      WHEN ts < TIMESTAMP '2000-01-01' OR ts >= TIMESTAMP '2100-01-01'
          THEN 'timestamp: out of range (2000 to 2099), got ' || apex_quote(timestamp)
      WHEN model IS NULL THEN 'model: missing'
{_count_checks()}
      WHEN total_tokens IS NOT NULL AND input_tokens IS NULL AND output_tokens IS NULL
          THEN '{TOTAL_ONLY}'
      WHEN cost_usd IS NOT NULL AND NOT coalesce(file_cost >= 0, false)
          THEN 'cost_usd: expected an amount >= 0 in USD, got ' || apex_quote(cost_usd)
{_duration_checks()}
      WHEN end_time IS NOT NULL AND end_ts IS NULL
          THEN 'end_time: not a date and time I can read, got ' || apex_quote(end_time)
      WHEN end_ts < ts THEN 'end_time: before the start timestamp'
      WHEN output_tokens IS NULL AND total_tokens IS NOT NULL
               AND n_total_tokens < coalesce(n_input_tokens, 0)
          THEN 'total_tokens: fewer than input_tokens'
      WHEN input_tokens IS NULL AND output_tokens IS NOT NULL AND total_tokens IS NOT NULL
               AND n_total_tokens < n_output_tokens
          THEN 'total_tokens: fewer than output_tokens'
      WHEN coalesce(n_cache_write_input_tokens, 0) = 0
               AND coalesce(n_cached_input_tokens, 0) > input_count
          THEN 'cached_input_tokens: more than input_tokens'
      WHEN coalesce(n_cached_input_tokens, 0) + coalesce(n_cache_write_input_tokens, 0)
               > input_count
          THEN 'cached_input_tokens + cache_write_input_tokens: more than input_tokens, which '
               || 'counts cache reads and writes in this format'
      WHEN status_raw <> '' AND status_raw NOT IN ({_words(_OK_WORDS + _ERROR_WORDS)})
               AND NOT regexp_full_match(status_raw, '[1-5][0-9][0-9]')
          THEN 'status: expected ok or error (or an HTTP status code), got ' || apex_quote(status)
      ELSE NULL
    END AS {ERROR}
  FROM typed
),
parsed AS (
SELECT
  {LINE}, {ERROR},
  ts AS timestamp,
  coalesce(provider, '') AS provider_raw,
  coalesce(model, '') AS model,
  CASE
    WHEN operation_raw IN ('completion', 'acompletion', 'chat', 'chat_completion',
                           'chat.completions', 'chat_completions', 'generate_content',
                           'responses', 'aresponses', 'messages')
        THEN 'chat'
    WHEN operation_raw IN ('embedding', 'aembedding', 'embed', 'embeddings') THEN 'embeddings'
    WHEN operation_raw IN ('text_completion', 'atext_completion') THEN 'text_completion'
    WHEN operation_raw <> '' THEN operation_raw
    WHEN lower(model) LIKE '%embed%' THEN 'embeddings'
    ELSE 'chat'
  END AS operation,
  input_count AS input_tokens,
  output_count AS output_tokens,
  coalesce(n_cached_input_tokens, 0) AS cached_input_tokens,
  coalesce(n_cache_write_input_tokens, 0) AS cache_write_input_tokens,
  least(coalesce(n_reasoning_tokens, 0), output_count) AS reasoning_tokens,
  file_cost,
  coalesce(d_latency_ms, d_latency_s * 1000,
           date_diff('microsecond', ts, end_ts) / 1000.0) AS latency_ms,
  coalesce(d_ttft_ms, date_diff('microsecond', ts, first_ts) / 1000.0) AS ttft_ms,
  CASE
    WHEN status_raw IN ({_words(_ERROR_WORDS)}) THEN 'error'
    WHEN regexp_full_match(status_raw, '[1-5][0-9][0-9]')
        THEN CASE WHEN CAST(status_raw AS INTEGER) < 400 THEN 'ok' ELSE 'error' END
    WHEN status_raw = '' AND error_type_raw <> '' THEN 'error'
    ELSE 'ok'
  END AS status,
  CASE
    WHEN error_type_raw <> '' THEN error_type_raw
    WHEN status_raw IN ({_words(_ERROR_KINDS)}) THEN status_raw
    WHEN regexp_full_match(status_raw, '[1-5][0-9][0-9]') AND CAST(status_raw AS INTEGER) >= 400
        THEN 'http_' || status_raw
    ELSE ''
  END AS error_type,
  coalesce(feature, '') AS feature,
  coalesce(tag_lists.tag_list, []) AS tags,
  coalesce(end_user, '') AS end_user,
  coalesce(prompt_hash, CASE WHEN prompt IS NOT NULL THEN left(sha256(prompt), 32) END, '')
      AS prompt_hash,
  coalesce(prefix_hash, '') AS prefix_hash,
  coalesce(n_prefix_tokens, 0) AS prefix_tokens,
  coalesce(request_id, '') AS request_id
FROM checked LEFT JOIN tag_lists ON checked.tags = tag_lists.tags_text
)
"""

# The key of a row without cache writes is the one it had before the ledger counted them, so
# a file sent again after the upgrade is still recognised.
_ROW_KEY_FIELDS = """p.timestamp, p.resolved_provider, p.model, p.operation, p.input_tokens,
       p.output_tokens, p.cached_input_tokens, p.reasoning_tokens, p.file_cost, p.latency_ms,
       p.ttft_ms, p.status, p.error_type, p.feature, p.tags, p.end_user, p.prompt_hash,
       p.prefix_hash, p.prefix_tokens, p.request_id"""

# A row whose catalog cost would not fit the ledger's cost column (absurd token counts) is
# rejected with its line, never allowed to fail the whole batch.
_FINISH_SELECT = f"""
, costed AS (
  SELECT p.*, r.provider AS resolved_provider, coalesce(r.priced, false) AS priced,
         CASE WHEN r.priced AND p.file_cost IS NULL THEN {{cost}} END AS catalog_cost
  FROM parsed p LEFT JOIN resolved r ON p.provider_raw = r.provider_raw AND p.model = r.model
      AND p.input_tokens BETWEEN r.min_input AND r.max_input
)
SELECT
  p.{LINE},
  CASE WHEN p.{ERROR} IS NULL AND p.catalog_cost >= {MAX_CALL_COST}
       THEN 'input_tokens/output_tokens: the cost at catalog prices would be over '
            || '${MAX_CALL_COST:,} for one call'
       ELSE p.{ERROR} END AS {ERROR},
  CAST($tenant_id AS VARCHAR) AS tenant_id,
  CAST($upload_id AS VARCHAR) AS upload_id,
  CASE WHEN p.cache_write_input_tokens = 0 THEN hash({_ROW_KEY_FIELDS})
       ELSE hash({_ROW_KEY_FIELDS}, p.cache_write_input_tokens) END AS row_key,
  p.timestamp,
  coalesce(p.resolved_provider, '') AS provider,
  p.model,
  p.operation,
  p.input_tokens,
  p.output_tokens,
  p.cached_input_tokens,
  p.cache_write_input_tokens,
  p.reasoning_tokens,
  coalesce(p.file_cost, CASE WHEN p.catalog_cost < {MAX_CALL_COST}
                             THEN CAST(p.catalog_cost AS {_COST}) END) AS cost_usd,
  CASE WHEN p.file_cost IS NOT NULL THEN 'file' WHEN p.priced THEN 'catalog' ELSE 'unpriced'
  END AS cost_source,
  p.latency_ms,
  p.ttft_ms,
  p.status,
  p.error_type,
  p.feature,
  p.tags,
  p.end_user,
  p.prompt_hash,
  p.prefix_hash,
  p.prefix_tokens,
  p.request_id
FROM costed p
"""

# by whether every priced model of the batch has whole-picodollar prices
_FINISH_SELECTS = {
    True: _FINISH_SELECT.replace("{cost}", _PICO_COST),
    False: _FINISH_SELECT.replace("{cost}", _DECIMAL_COST),
}

_TYPED_CTE = f"""
WITH parsed AS (
  SELECT *, CAST(NULL AS VARCHAR) AS {ERROR}, provider AS provider_raw,
         CAST(NULL AS {_COST}) AS file_cost
  FROM typed_batch
)
"""


@dataclass(slots=True)
class RejectedRow:
    line: int
    message: str


@dataclass(slots=True)
class NormalizedBatch:
    """Finished ledger rows of one batch, and what was wrong with the others."""

    rows: pa.Table
    rejected: int
    errors: list[RejectedRow] = field(default_factory=list)
    unpriced: dict[tuple[str, str], int] = field(default_factory=dict)


def per_token(price_per_million: Decimal) -> Decimal:
    return price_per_million / Decimal(1_000_000)


def _picodollars_per_token(price_per_million: Decimal | None) -> int | None:
    """The price as whole picodollars per token, or None when that would not be exact."""
    if price_per_million is None:
        return None
    pico = price_per_million * Decimal(1_000_000)
    if pico != pico.to_integral_value() or not 0 <= pico < _PICO_PER_TOKEN_BOUND:
        return None
    return int(pico)


class Normalizer:
    """One private DuckDB connection per import: not shared between threads."""

    def __init__(
        self, resolve_price: PriceResolver, *, threads: int = 2, memory_limit_mb: int = 256
    ) -> None:
        self._resolve_price = resolve_price
        self._db = duckdb.connect(
            config={
                "threads": threads,
                "memory_limit": f"{memory_limit_mb}MB",
                "preserve_insertion_order": False,
            }
        )
        self._db.execute("SET TimeZone = 'UTC'")
        for statement in _MACROS.strip().split(";\n"):
            if statement.strip():
                self._db.execute(statement)
        self._resolutions: dict[tuple[str, str], tuple[str, ModelPrice | None]] = {}

    def close(self) -> None:
        self._db.close()

    def normalize(self, raw: pa.Table, *, tenant_id: str, upload_id: str) -> NormalizedBatch:
        """Parse and validate `raw` (text columns + `_line`), then price and key the good rows."""
        source = _with_all_fields(raw)
        pairs = _distinct_pairs(
            _or_empty(source.column("provider")), _or_empty(source.column("model"))
        )
        return self._run("raw_batch", source, pairs, _PARSE_CTES, tenant_id, upload_id)

    def finish_typed(self, typed: pa.Table, *, tenant_id: str, upload_id: str) -> NormalizedBatch:
        """Rows that are typed already (the demo generator): only price and key them."""
        if "cache_write_input_tokens" not in typed.column_names:
            typed = typed.append_column(
                "cache_write_input_tokens", pa.array([0] * typed.num_rows, pa.int64())
            )
        pairs = _distinct_pairs(typed.column("provider"), typed.column("model"))
        return self._run("typed_batch", typed, pairs, _TYPED_CTE, tenant_id, upload_id)

    def _run(
        self,
        name: str,
        source: pa.Table,
        pairs: list[tuple[str, str]],
        ctes: str,
        tenant_id: str,
        upload_id: str,
    ) -> NormalizedBatch:
        resolved, whole_picodollars = self._resolution_table(pairs)
        self._db.register(name, source)
        self._db.register("resolved", resolved)
        try:
            # planned once (duckdb_arrow.py): planning is most of a small batch's cost
            table = arrow_result(
                self._db,
                ctes + _FINISH_SELECTS[whole_picodollars],
                {"tenant_id": tenant_id, "upload_id": upload_id},
            )
        finally:
            self._db.unregister("resolved")
            self._db.unregister(name)
        return _split(table)

    def _resolution_table(self, pairs: list[tuple[str, str]]) -> tuple[pa.Table, bool]:
        """One row per price band of each (provider, model) of the batch: the rows join the
        band their input size falls in (an unknown model has one band, unpriced). And whether
        every priced band has whole-picodollar prices (the batch is costed in integers)."""
        columns: dict[str, list[object]] = {
            name: []
            for name in (
                "provider_raw",
                "model",
                "provider",
                "priced",
                "min_input",
                "max_input",
                *(f"{part}_per_token" for part in _PRICE_PARTS),
                *(f"{part}_pico" for part in _PRICE_PARTS),
            )
        }
        for provider_raw, model in pairs:
            key = (provider_raw, model)
            if key not in self._resolutions:
                price = self._resolve_price(provider_raw, model)
                provider = normalize_provider(provider_raw) or (price.provider if price else "")
                self._resolutions[key] = (provider, price)
            provider, price = self._resolutions[key]
            for band in price.bands() if price is not None else (None,):
                columns["provider_raw"].append(provider_raw)
                columns["model"].append(model)
                columns["provider"].append(provider)
                columns["priced"].append(band is not None)
                columns["min_input"].append(band.min_input if band else MIN_INPUT)
                columns["max_input"].append(band.max_input if band else MAX_INPUT)
                prices: dict[str, Decimal | None] = (
                    {
                        "input": None,
                        "cached": None,
                        "cache_write": None,
                        "output": None,
                        "reasoning": None,
                    }
                    if band is None
                    else {
                        "input": band.input,
                        "cached": band.cached_input,
                        "cache_write": band.cache_write,
                        "output": band.output,
                        "reasoning": band.reasoning,
                    }
                )
                picos = {name: _picodollars_per_token(value) for name, value in prices.items()}
                exact = all(value is not None for value in picos.values())
                for name, value in prices.items():
                    columns[f"{name}_per_token"].append(
                        per_token(value) if value is not None else None
                    )
                    columns[f"{name}_pico"].append(picos[name] if exact else None)
        whole_picodollars = all(
            pico is not None or not priced
            for priced, pico in zip(columns["priced"], columns["input_pico"], strict=True)
        )
        decimal = pa.decimal128(38, 18)
        table = pa.table(
            {
                "provider_raw": pa.array(columns["provider_raw"], pa.string()),
                "model": pa.array(columns["model"], pa.string()),
                "provider": pa.array(columns["provider"], pa.string()),
                "priced": pa.array(columns["priced"], pa.bool_()),
                "min_input": pa.array(columns["min_input"], pa.int64()),
                "max_input": pa.array(columns["max_input"], pa.int64()),
                **{
                    f"{part}_per_token": pa.array(columns[f"{part}_per_token"], decimal)
                    for part in _PRICE_PARTS
                },
                **{
                    f"{part}_pico": pa.array(columns[f"{part}_pico"], pa.int64())
                    for part in _PRICE_PARTS
                },
            }
        )
        return table, whole_picodollars


def _or_empty(text: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(text, "") if text.null_count else text


def _distinct_pairs(providers: pa.ChunkedArray, models: pa.ChunkedArray) -> list[tuple[str, str]]:
    """The (provider, model) pairs of a batch, each once: grouped in Arrow, without a
    statement to plan."""
    groups = pa.table({"provider": providers, "model": models}).group_by(["provider", "model"])
    keys = groups.aggregate([])
    return list(
        zip(keys.column("provider").to_pylist(), keys.column("model").to_pylist(), strict=True)
    )


def _split(table: pa.Table) -> NormalizedBatch:
    """Good rows in ledger column order; the bad ones counted and the first few described."""
    rejected = table.num_rows - table.column(ERROR).null_count
    errors: list[RejectedRow] = []
    if rejected:
        bad_mask = pc.is_valid(table.column(ERROR))
        bad = table.filter(bad_mask).select([LINE, ERROR]).sort_by(LINE)
        head = bad.slice(0, MAX_REPORTED_ERRORS).to_pylist()
        errors = [RejectedRow(int(row[LINE]), str(row[ERROR])) for row in head]
        table = table.filter(pc.invert(bad_mask))
    rows = table.select(list(COLUMN_NAMES))
    unpriced: dict[tuple[str, str], int] = {}
    unpriced_mask = pc.equal(rows.column("cost_source"), "unpriced")
    if pc.any(unpriced_mask).as_py():
        counts = (
            rows.filter(unpriced_mask)
            .group_by(["provider", "model"])
            .aggregate([("model", "count")])
        )
        for row in counts.to_pylist():
            unpriced[(row["provider"], row["model"])] = int(row["model_count"])
    return NormalizedBatch(rows=rows, rejected=int(rejected), errors=errors, unpriced=unpriced)


def _clean_edges(text: pa.StringArray) -> bool:
    """Whether no value can start or end with whitespace: the first and last byte of every
    value is printable ASCII (any other byte, whitespace or not, sends the array to the
    trimming kernel, which copies every value)."""
    data = text.buffers()[2]
    if data is None or not data.size:
        return True
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset : text.offset + len(text) + 1]
    starts, ends = offsets[:-1], offsets[1:]
    filled = ends > starts
    view = np.frombuffer(data, np.uint8)
    edges = np.concatenate((view[starts[filled]], view[ends[filled] - 1]))
    return not edges.size or bool(edges.min() > 0x20 and edges.max() < 0x7F)


def _field(text: pa.StringArray) -> pa.StringArray:
    """The text without surrounding whitespace, NULL when empty: what every importer's empty
    cell, missing key or blank value means. Values that need no trimming (almost all) are not
    copied: the result shares their buffers with a validity bitmap of its own.

    The checks read the offsets and validity with numpy rather than with Arrow kernels: a
    kernel releases the GIL and must take it back, which on a busy server (the OTLP receiver
    decoding exports in other threads) can cost far more than the kernel itself."""
    if not _clean_edges(text):
        text = pc.utf8_trim_whitespace(text)
    if not len(text):
        return text
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset : text.offset + len(text) + 1]
    keep = offsets[1:] > offsets[:-1]
    if text.null_count:
        bits = np.unpackbits(np.frombuffer(text.buffers()[0], np.uint8), bitorder="little")
        keep &= bits[text.offset : text.offset + len(text)].astype(bool)
    elif keep.all():
        return text
    if not keep.any():
        return pa.nulls(len(text), pa.string())
    validity = pa.py_buffer(np.packbits(keep, bitorder="little"))
    offsets_buffer = text.buffers()[1].slice(text.offset * 4, (len(text) + 1) * 4)
    return pa.Array.from_buffers(
        pa.string(), len(text), [validity, offsets_buffer, text.buffers()[2]]
    )


def _with_all_fields(raw: pa.Table) -> pa.Table:
    """Every field as text without surrounding whitespace, NULL when empty or missing, so one
    statement serves every file. Arrow trims several times faster than SQL's trim()."""
    line = raw.column(LINE)
    columns = {LINE: line if line.type == pa.int64() else line.cast(pa.int64())}
    for name in RAW_FIELDS:
        if name in raw.column_names:
            column = raw.column(name)
            if column.type != pa.string():
                column = column.cast(pa.string())
            columns[name] = pa.chunked_array(
                [_field(chunk) for chunk in column.chunks], pa.string()
            )
        else:
            columns[name] = pa.nulls(raw.num_rows, pa.string())
    return pa.table(columns)
