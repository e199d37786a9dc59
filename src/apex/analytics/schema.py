"""The usage record: one row per LLM call, named after the OpenTelemetry GenAI conventions.

This module is the one place that knows the ledger's columns, their types on both engines and
the OpenTelemetry attribute each one comes from; the importers, the normalizer, the ledgers and
the queries all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

COST_SCALE = 12
COST_PRECISION = 18
# the most one call can cost in the ledger (USD, exclusive): what DECIMAL(18, 12) holds
MAX_CALL_COST = 10 ** (COST_PRECISION - COST_SCALE)


@dataclass(frozen=True, slots=True)
class LedgerColumn:
    name: str
    arrow: pa.DataType
    duckdb: str
    clickhouse: str
    otel: str | None
    doc: str
    # set on a column added after the ledger's first release: what the rows of a ledger file
    # created before it hold once `initialize` has added the column
    added_default: str | None = None


_DECIMAL = f"DECIMAL({COST_PRECISION},{COST_SCALE})"
_CH_DECIMAL = f"Nullable(Decimal({COST_PRECISION}, {COST_SCALE}))"
_TEXT = ("VARCHAR NOT NULL", "String")
_COUNT = ("BIGINT NOT NULL", "Int64")


def _column(
    name: str,
    arrow: pa.DataType,
    types: tuple[str, str],
    otel: str | None,
    doc: str,
    added_default: str | None = None,
) -> LedgerColumn:
    return LedgerColumn(name, arrow, types[0], types[1], otel, doc, added_default)


COLUMNS: tuple[LedgerColumn, ...] = (
    _column(
        "tenant_id",
        pa.string(),
        _TEXT,
        None,
        "the uploader's user id, set by the server, never read from a file",
    ),
    _column(
        "upload_id", pa.string(), _TEXT, None, "the upload (or demo load) the row arrived with"
    ),
    _column(
        "row_key",
        pa.uint64(),
        ("UBIGINT NOT NULL", "UInt64"),
        None,
        "64-bit content hash of the normalized row: the re-upload dedup key",
    ),
    _column(
        "timestamp",
        pa.timestamp("us"),
        ("TIMESTAMP NOT NULL", "DateTime64(6, 'UTC')"),
        None,
        "start of the call, UTC, microseconds",
    ),
    _column(
        "provider",
        pa.string(),
        _TEXT,
        "gen_ai.provider.name",
        "provider, normalized to the OpenTelemetry provider names",
    ),
    _column("model", pa.string(), _TEXT, "gen_ai.request.model", "model as the file named it"),
    _column(
        "operation",
        pa.string(),
        _TEXT,
        "gen_ai.operation.name",
        "chat, text_completion, embeddings, execute_tool, ...",
    ),
    _column(
        "input_tokens",
        pa.int64(),
        _COUNT,
        "gen_ai.usage.input_tokens",
        "all input tokens, cache reads and cache writes included",
    ),
    _column(
        "output_tokens",
        pa.int64(),
        _COUNT,
        "gen_ai.usage.output_tokens",
        "all output tokens, reasoning ones included",
    ),
    _column(
        "cached_input_tokens",
        pa.int64(),
        _COUNT,
        "gen_ai.usage.cache_read.input_tokens",
        "input tokens served from the provider cache",
    ),
    _column(
        "cache_write_input_tokens",
        pa.int64(),
        _COUNT,
        "gen_ai.usage.cache_write.input_tokens",
        "input tokens written to the provider cache",
        added_default="0",
    ),
    _column(
        "reasoning_tokens",
        pa.int64(),
        _COUNT,
        "gen_ai.usage.reasoning.output_tokens",
        "output tokens spent on hidden reasoning",
    ),
    _column(
        "cost_usd",
        pa.decimal128(COST_PRECISION, COST_SCALE),
        (_DECIMAL, _CH_DECIMAL),
        None,
        "from the file when given, else priced from the catalog; NULL when unpriced",
    ),
    _column("cost_source", pa.string(), _TEXT, None, "file, catalog or unpriced"),
    _column(
        "latency_ms",
        pa.float64(),
        ("DOUBLE", "Nullable(Float64)"),
        None,
        "end-to-end duration in milliseconds",
    ),
    _column(
        "ttft_ms",
        pa.float64(),
        ("DOUBLE", "Nullable(Float64)"),
        None,
        "time to first token in milliseconds, when streamed",
    ),
    _column("status", pa.string(), _TEXT, None, "ok or error"),
    _column("error_type", pa.string(), _TEXT, "error.type", "error class, empty when ok"),
    _column("feature", pa.string(), _TEXT, None, "the product feature that made the call"),
    _column(
        "tags",
        pa.list_(pa.string()),
        ("VARCHAR[] NOT NULL", "Array(String)"),
        None,
        "free tags, lower case",
    ),
    _column("end_user", pa.string(), _TEXT, "enduser.id", "the application's end user, if known"),
    _column(
        "prompt_hash", pa.string(), _TEXT, None, "hash of the full prompt (never the prompt text)"
    ),
    _column(
        "prefix_hash",
        pa.string(),
        _TEXT,
        None,
        "hash of the shared prompt prefix (system prompt, tools)",
    ),
    _column(
        "prefix_tokens", pa.int64(), _COUNT, None, "length of that prefix in tokens, 0 when unknown"
    ),
    _column(
        "request_id",
        pa.string(),
        _TEXT,
        "gen_ai.response.id",
        "the source's id for the call (span id, LiteLLM request_id), when given",
    ),
)

COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
ARROW_SCHEMA = pa.schema(
    [pa.field(c.name, c.arrow, nullable=not c.duckdb.endswith("NOT NULL")) for c in COLUMNS]
)

ADDED_COLUMNS: tuple[LedgerColumn, ...] = tuple(c for c in COLUMNS if c.added_default)

# Set (to "true") by an importer whose source counts input tokens without the cache reads and
# writes (Anthropic's usage object): the normalizer adds them, as the ledger counts them in.
INPUT_EXCLUDES_CACHE = "input_excludes_cache"

# The normalized columns an importer may deliver (as text); everything else is derived.
RAW_FIELDS: tuple[str, ...] = (
    "timestamp",
    "end_time",
    "provider",
    "model",
    "operation",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    INPUT_EXCLUDES_CACHE,
    "reasoning_tokens",
    "cost_usd",
    "latency_ms",
    "latency_s",
    "ttft_ms",
    "first_token_time",
    "status",
    "error_type",
    "feature",
    "tags",
    "end_user",
    "prompt_hash",
    "prefix_hash",
    "prefix_tokens",
    "prompt",
    "request_id",
)

COST_SOURCES = ("file", "catalog", "unpriced")
