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


@dataclass(frozen=True, slots=True)
class LedgerColumn:
    name: str
    arrow: pa.DataType
    duckdb: str
    clickhouse: str
    otel: str | None
    doc: str


COLUMNS: tuple[LedgerColumn, ...] = (
    LedgerColumn("tenant_id", pa.string(), "VARCHAR NOT NULL", "String", None,
           "the uploader's user id, set by the server, never read from a file"),
    LedgerColumn("upload_id", pa.string(), "VARCHAR NOT NULL", "String", None,
           "the upload (or demo load) the row arrived with"),
    LedgerColumn("row_key", pa.uint64(), "UBIGINT NOT NULL", "UInt64", None,
           "64-bit content hash of the normalized row: the re-upload dedup key"),
    LedgerColumn("timestamp", pa.timestamp("us"), "TIMESTAMP NOT NULL", "DateTime64(6, 'UTC')", None,
           "start of the call, UTC, microseconds"),
    LedgerColumn("provider", pa.string(), "VARCHAR NOT NULL", "String", "gen_ai.provider.name",
           "provider, normalized to the OpenTelemetry provider names"),
    LedgerColumn("model", pa.string(), "VARCHAR NOT NULL", "String", "gen_ai.request.model",
           "model as the file named it"),
    LedgerColumn("operation", pa.string(), "VARCHAR NOT NULL", "String", "gen_ai.operation.name",
           "chat, text_completion, embeddings, execute_tool, ..."),
    LedgerColumn("input_tokens", pa.int64(), "BIGINT NOT NULL", "Int64", "gen_ai.usage.input_tokens",
           "all input tokens, cached ones included"),
    LedgerColumn("output_tokens", pa.int64(), "BIGINT NOT NULL", "Int64", "gen_ai.usage.output_tokens",
           "all output tokens, reasoning ones included"),
    LedgerColumn("cached_input_tokens", pa.int64(), "BIGINT NOT NULL", "Int64",
           "gen_ai.usage.cache_read.input_tokens", "input tokens served from the provider cache"),
    LedgerColumn("reasoning_tokens", pa.int64(), "BIGINT NOT NULL", "Int64",
           "gen_ai.usage.reasoning.output_tokens", "output tokens spent on hidden reasoning"),
    LedgerColumn("cost_usd", pa.decimal128(COST_PRECISION, COST_SCALE),
           f"DECIMAL({COST_PRECISION},{COST_SCALE})",
           f"Nullable(Decimal({COST_PRECISION}, {COST_SCALE}))", None,
           "from the file when given, else priced from the catalog; NULL when unpriced"),
    LedgerColumn("cost_source", pa.string(), "VARCHAR NOT NULL", "String", None,
           "file, catalog or unpriced"),
    LedgerColumn("latency_ms", pa.float64(), "DOUBLE", "Nullable(Float64)", None,
           "end-to-end duration in milliseconds"),
    LedgerColumn("ttft_ms", pa.float64(), "DOUBLE", "Nullable(Float64)", None,
           "time to first token in milliseconds, when streamed"),
    LedgerColumn("status", pa.string(), "VARCHAR NOT NULL", "String", None, "ok or error"),
    LedgerColumn("error_type", pa.string(), "VARCHAR NOT NULL", "String", "error.type",
           "error class, empty when ok"),
    LedgerColumn("feature", pa.string(), "VARCHAR NOT NULL", "String", None,
           "the product feature that made the call"),
    LedgerColumn("tags", pa.list_(pa.string()), "VARCHAR[] NOT NULL", "Array(String)", None,
           "free tags, lower case"),
    LedgerColumn("end_user", pa.string(), "VARCHAR NOT NULL", "String", "enduser.id",
           "the application's end user, when known"),
    LedgerColumn("prompt_hash", pa.string(), "VARCHAR NOT NULL", "String", None,
           "hash of the full prompt (never the prompt text)"),
    LedgerColumn("prefix_hash", pa.string(), "VARCHAR NOT NULL", "String", None,
           "hash of the shared prompt prefix (system prompt, tools)"),
    LedgerColumn("prefix_tokens", pa.int64(), "BIGINT NOT NULL", "Int64", None,
           "length of that prefix in tokens, 0 when unknown"),
    LedgerColumn("request_id", pa.string(), "VARCHAR NOT NULL", "String", "gen_ai.response.id",
           "the source's id for the call (span id, LiteLLM request_id), when given"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
ARROW_SCHEMA = pa.schema(
    [pa.field(c.name, c.arrow, nullable=not c.duckdb.endswith("NOT NULL")) for c in COLUMNS]
)

# The normalized columns an importer may deliver (as text); everything else is derived.
RAW_FIELDS: tuple[str, ...] = (
    "timestamp", "end_time", "provider", "model", "operation", "input_tokens", "output_tokens",
    "total_tokens", "cached_input_tokens", "reasoning_tokens", "cost_usd", "latency_ms",
    "latency_s", "ttft_ms", "first_token_time", "status", "error_type", "feature", "tags",
    "end_user",
    "prompt_hash", "prefix_hash", "prefix_tokens", "prompt", "request_id",
)

COST_SOURCES = ("file", "catalog", "unpriced")
