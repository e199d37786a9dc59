"""The demo workload: a realistic month of LLM calls with known, planted savings.

Deterministic for a seed; generated in chunks with numpy so ten million rows need no more
memory than a quarter million. What is planted is described by `PLANTED` (and in
docs/demo-data.md) so the tests can check that the analysis finds each opportunity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from apex.analytics.normalize import LINE

CHUNK_ROWS = 250_000
DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class DemoRoute:
    provider: str
    model: str
    share: float
    error_rate: float = 0.04


@dataclass(frozen=True, slots=True)
class DemoFeature:
    name: str
    weight: float
    routes: tuple[DemoRoute, ...]
    operation: str = "chat"
    input_median: float = 1_000
    output_median: float = 200
    prefix: str = ""
    prefix_tokens: int = 0
    duplicate_share: float = 0.0
    duplicate_pool: int = 200
    output_outlier_share: float = 0.0
    output_outlier_range: tuple[int, int] = (0, 0)
    input_outlier_share: float = 0.0
    input_outlier_range: tuple[int, int] = (0, 0)
    slow_share: float = 0.0
    slow_range_ms: tuple[int, int] = (0, 0)
    nightly: bool = False
    tags: tuple[str, ...] = ()
    reasoning_share: float = 0.0


FEATURES: tuple[DemoFeature, ...] = (
    DemoFeature(
        "chat",
        0.30,
        (
            DemoRoute("anthropic", "claude-sonnet-4", 0.45),
            DemoRoute("openai", "gpt-4o-mini", 0.25),
            DemoRoute("mistral_ai", "mistral-large", 0.20, error_rate=0.15),
            DemoRoute("gcp.gemini", "gemini-2.5-flash", 0.10),
        ),
        input_median=1_800,
        output_median=280,
        prefix="chat-system-v3",
        prefix_tokens=1_500,
        duplicate_share=0.04,
        duplicate_pool=400,
        tags=("interactive",),
    ),
    DemoFeature(
        "summarization",
        0.15,
        (DemoRoute("anthropic", "claude-sonnet-4", 1.0),),
        input_median=3_500,
        output_median=300,
        prefix="summarize-v2",
        prefix_tokens=800,
        output_outlier_share=0.03,
        output_outlier_range=(3_000, 8_000),
    ),
    DemoFeature(
        "classification",
        0.15,
        (DemoRoute("openai", "gpt-4o", 1.0),),
        input_median=600,
        output_median=4,
        prefix="classify-v5",
        prefix_tokens=450,
        duplicate_share=0.30,
        duplicate_pool=250,
    ),
    DemoFeature(
        "extraction",
        0.10,
        (DemoRoute("openai", "gpt-4o", 1.0),),
        input_median=2_000,
        output_median=90,
        prefix="extract-invoice-v1",
        prefix_tokens=700,
        input_outlier_share=0.03,
        input_outlier_range=(20_000, 60_000),
    ),
    DemoFeature(
        "embeddings",
        0.12,
        (DemoRoute("openai", "text-embedding-3-small", 1.0, 0.02),),
        operation="embeddings",
        input_median=350,
        output_median=0,
    ),
    DemoFeature(
        "agent_tool_calls",
        0.08,
        (DemoRoute("gcp.gemini", "gemini-2.5-pro", 1.0),),
        input_median=4_000,
        output_median=350,
        prefix="agent-tools-v7",
        prefix_tokens=3_000,
        slow_share=0.07,
        slow_range_ms=(20_000, 45_000),
        tags=("agent",),
        reasoning_share=0.4,
    ),
    DemoFeature(
        "nightly-enrichment",
        0.10,
        (DemoRoute("openai", "gpt-4.1", 1.0, 0.01),),
        input_median=1_200,
        output_median=400,
        prefix="enrich-v2",
        prefix_tokens=600,
        nightly=True,
        tags=("batch", "nightly"),
    ),
)


@dataclass(frozen=True, slots=True)
class PlantedOpportunity:
    """One saving the demo data holds on purpose, and the signal that reveals it."""

    id: str
    kind: str
    title: str
    provider: str
    model: str
    feature: str
    signal: dict[str, Any] = field(default_factory=dict)


PLANTED: tuple[PlantedOpportunity, ...] = (
    PlantedOpportunity(
        "routing-classification",
        "model_routing",
        "Classification runs on gpt-4o with 4-token answers",
        "openai",
        "gpt-4o",
        "classification",
        {"traffic_share": 0.15, "output_tokens_median": 4, "output_tokens_p95_at_most": 16},
    ),
    PlantedOpportunity(
        "duplicate-classification-prompts",
        "prompt_caching",
        "30% of classification prompts are exact repeats",
        "openai",
        "gpt-4o",
        "classification",
        {"duplicate_share_of_feature": 0.30, "duplicate_share_of_model_at_least": 0.12},
    ),
    PlantedOpportunity(
        "uncached-shared-prefixes",
        "prompt_caching",
        "Chat and summaries resend 800-1,500-token system prompts, never cached",
        "anthropic",
        "claude-sonnet-4",
        "chat",
        {
            "prefix_tokens": 1_500,
            "smallest_prefix_tokens": 800,
            "shared_prefix_share_at_least": 0.5,
            "cached_input_tokens": 0,
        },
    ),
    PlantedOpportunity(
        "nightly-batch-job",
        "batch_api",
        "A nightly enrichment job runs at interactive prices",
        "openai",
        "gpt-4.1",
        "nightly-enrichment",
        {"traffic_share": 0.10, "hours_utc": [1, 2, 3], "tags": ["batch", "nightly"]},
    ),
    PlantedOpportunity(
        "summary-output-outliers",
        "output_token_caps",
        "3% of summaries run to 3,000-8,000 output tokens",
        "anthropic",
        "claude-sonnet-4",
        "summarization",
        {"outlier_share": 0.03, "outlier_tokens_at_least": 3_000, "output_tokens_median": 300},
    ),
    PlantedOpportunity(
        "extraction-input-outliers",
        "prompt_trimming",
        "3% of extraction prompts are 20k-60k tokens",
        "openai",
        "gpt-4o",
        "extraction",
        {"outlier_share": 0.03, "outlier_tokens_at_least": 20_000, "input_tokens_median": 2_000},
    ),
    PlantedOpportunity(
        "mistral-errors-and-retries",
        "error_retry_waste",
        "mistral-large fails 15% of chat calls, most are retried",
        "mistral_ai",
        "mistral-large",
        "chat",
        {"error_rate": 0.15, "other_error_rate_at_most": 0.05, "retry_share_of_errors": 0.7},
    ),
    PlantedOpportunity(
        "slow-agent-calls",
        "latency",
        "7% of agent tool calls on gemini-2.5-pro take 20-45 s",
        "gcp.gemini",
        "gemini-2.5-pro",
        "agent_tool_calls",
        {"p99_latency_ms_at_least": 20_000, "slow_share": 0.07},
    ),
)

_DIURNAL = np.array(
    [
        0.25,
        0.2,
        0.18,
        0.18,
        0.2,
        0.3,
        0.5,
        0.8,
        1.1,
        1.4,
        1.6,
        1.7,
        1.7,
        1.8,
        1.9,
        1.9,
        1.8,
        1.6,
        1.3,
        1.0,
        0.8,
        0.6,
        0.45,
        0.3,
    ]
)
_WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.45, 0.4])  # Monday first
_MS_PER_TOKEN = {
    "claude-sonnet-4": 18.0,
    "gpt-4o-mini": 9.0,
    "mistral-large": 22.0,
    "gemini-2.5-flash": 7.0,
    "gpt-4o": 14.0,
    "text-embedding-3-small": 0.0,
    "gemini-2.5-pro": 20.0,
    "gpt-4.1": 15.0,
}
_ERROR_TYPES = np.array(["timeout", "rate_limit", "server_error"])


def default_end(now: datetime | None = None) -> datetime:
    """Midnight UTC at the start of today: the demo's month ends where the day begins."""
    now = now or datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def _hex(values: np.ndarray, prefix: str) -> list[str]:
    return [f"{prefix}{value:016x}" for value in values.tolist()]


class DemoWorkload:
    """`rows` calls over `days` days ending at `end`, in chunks of `CHUNK_ROWS`."""

    def __init__(
        self, rows: int, seed: int, *, end: datetime | None = None, days: int = DEFAULT_DAYS
    ) -> None:
        if rows < 1:
            raise ValueError("rows must be at least 1")
        self.rows = rows
        self.seed = seed
        self.end = (end or default_end()).astimezone(UTC)
        self.days = days
        self._start = self.end - timedelta(days=days)
        root = np.random.default_rng(np.random.SeedSequence([seed, 0]))
        self._pools = {f.name: root.integers(0, 2**63, max(f.duplicate_pool, 1)) for f in FEATURES}

    def chunks(self) -> Iterator[pa.Table]:
        done = 0
        index = 0
        while done < self.rows:
            size = min(CHUNK_ROWS, self.rows - done)
            yield self._chunk(index, done, size)
            done += size
            index += 1

    def _timestamps(self, rng: np.random.Generator, size: int, nightly: bool) -> np.ndarray:
        start_us = int(self._start.timestamp() * 1_000_000)
        day_weights = np.array(
            [_WEEKDAY[(self._start + timedelta(days=d)).weekday()] for d in range(self.days)]
        )
        if nightly:
            days = rng.integers(0, self.days, size)
            hours = rng.integers(1, 4, size)
        else:
            days = rng.choice(self.days, size, p=day_weights / day_weights.sum())
            hours = rng.choice(24, size, p=_DIURNAL / _DIURNAL.sum())
        within = rng.integers(0, 3_600_000_000, size)
        return start_us + days * 86_400_000_000 + hours * 3_600_000_000 + within

    def _chunk(self, index: int, offset: int, size: int) -> pa.Table:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1, index]))
        weights = np.array([f.weight for f in FEATURES])
        which = rng.choice(len(FEATURES), size, p=weights / weights.sum())
        columns: dict[str, Any] = {
            name: np.empty(size, dtype=object)
            for name in (
                "provider",
                "model",
                "operation",
                "feature",
                "prompt_hash",
                "prefix_hash",
                "end_user",
                "error_type",
                "status",
            )
        }
        numbers = {
            name: np.zeros(size, dtype=np.int64)
            for name in (
                "timestamp",
                "input_tokens",
                "output_tokens",
                "cached_input_tokens",
                "reasoning_tokens",
                "prefix_tokens",
            )
        }
        latency = np.zeros(size)
        ttft = np.full(size, np.nan)
        tags = np.empty(size, dtype=object)
        unique = rng.integers(0, 2**63, size)
        users = rng.zipf(1.6, size) % 5_000
        for number, feature in enumerate(FEATURES):
            rows = np.flatnonzero(which == number)
            n = rows.size
            if not n:
                continue
            routes = feature.routes
            pick = rng.choice(len(routes), n, p=[r.share for r in routes])
            columns["provider"][rows] = np.array([r.provider for r in routes])[pick]
            columns["model"][rows] = np.array([r.model for r in routes])[pick]
            columns["operation"][rows] = feature.operation
            columns["feature"][rows] = feature.name
            numbers["timestamp"][rows] = self._timestamps(rng, n, feature.nightly)
            inputs = rng.lognormal(np.log(feature.input_median), 0.5, n)
            if feature.input_outlier_share:
                big = rng.random(n) < feature.input_outlier_share
                inputs[big] = rng.integers(*feature.input_outlier_range, int(big.sum()))
            outputs = (
                rng.lognormal(np.log(feature.output_median), 0.6, n)
                if feature.output_median
                else np.zeros(n)
            )
            if feature.output_outlier_share:
                long = rng.random(n) < feature.output_outlier_share
                outputs[long] = rng.integers(*feature.output_outlier_range, int(long.sum()))
            numbers["input_tokens"][rows] = np.maximum(inputs, feature.prefix_tokens + 20)
            numbers["output_tokens"][rows] = np.maximum(
                np.rint(outputs), 0 if not feature.output_median else 1
            )
            if feature.reasoning_share:
                numbers["reasoning_tokens"][rows] = np.rint(
                    numbers["output_tokens"][rows] * feature.reasoning_share
                )
            numbers["prefix_tokens"][rows] = feature.prefix_tokens
            columns["prefix_hash"][rows] = f"pfx-{feature.prefix}" if feature.prefix else ""
            hashes = unique[rows].copy()
            if feature.duplicate_share:
                repeat = rng.random(n) < feature.duplicate_share
                hashes[repeat] = rng.choice(self._pools[feature.name], int(repeat.sum()))
            columns["prompt_hash"][rows] = _hex(hashes, "")
            per_token = np.array([_MS_PER_TOKEN[r.model] for r in routes])[pick]
            base = 250 + numbers["output_tokens"][rows] * per_token
            latency[rows] = base * rng.lognormal(0, 0.35, n)
            if feature.slow_share:
                slow = rng.random(n) < feature.slow_share
                latency[rows[slow]] = rng.integers(*feature.slow_range_ms, int(slow.sum()))
            if feature.operation == "chat" and not feature.nightly:
                ttft[rows] = 180 + rng.lognormal(np.log(250), 0.4, n)
            interactive = not feature.nightly
            columns["end_user"][rows] = (
                np.char.add("user-", users[rows].astype(str)).astype(object) if interactive else ""
            )
            tag_value = list(feature.tags)
            for row in rows:
                tags[row] = tag_value
            error_rate = np.array([r.error_rate for r in routes])[pick]
            failed = rng.random(n) < error_rate
            columns["status"][rows] = np.where(failed, "error", "ok")
            columns["error_type"][rows] = np.where(failed, _ERROR_TYPES[rng.integers(0, 3, n)], "")
            numbers["output_tokens"][rows[failed]] = 0
            numbers["reasoning_tokens"][rows[failed]] = 0
        self._plant_retries(rng, columns, numbers, latency)
        order = np.argsort(numbers["timestamp"], kind="stable")
        lines = np.arange(offset + 1, offset + size + 1)
        request_ids = [f"demo-{self.seed}-{line}" for line in lines.tolist()]
        table = pa.table(
            {
                LINE: pa.array(lines, pa.int64()),
                "timestamp": pa.array(numbers["timestamp"][order], pa.timestamp("us")),
                **{
                    name: pa.array(columns[name][order], pa.string())
                    for name in ("provider", "model", "operation")
                },
                **{
                    name: pa.array(numbers[name][order], pa.int64())
                    for name in (
                        "input_tokens",
                        "output_tokens",
                        "cached_input_tokens",
                        "reasoning_tokens",
                    )
                },
                "latency_ms": pa.array(np.round(latency[order], 1), pa.float64()),
                "ttft_ms": pa.array(np.round(ttft[order], 1), pa.float64(), from_pandas=True),
                **{
                    name: pa.array(columns[name][order], pa.string())
                    for name in ("status", "error_type", "feature")
                },
                "tags": pa.array(tags[order], pa.list_(pa.string())),
                "end_user": pa.array(columns["end_user"][order], pa.string()),
                "prompt_hash": pa.array(columns["prompt_hash"][order], pa.string()),
                "prefix_hash": pa.array(columns["prefix_hash"][order], pa.string()),
                "prefix_tokens": pa.array(numbers["prefix_tokens"][order], pa.int64()),
                "request_id": pa.array(request_ids, pa.string()),
            }
        )
        return table

    def _plant_retries(
        self,
        rng: np.random.Generator,
        columns: dict[str, Any],
        numbers: dict[str, np.ndarray],
        latency: np.ndarray,
    ) -> None:
        """70% of failed calls are sent again 2-60 s later: the retry copies the failed call
        (same prompt, model, user) over a random successful row of the same feature."""
        status = columns["status"]
        for feature in FEATURES:
            in_feature = columns["feature"] == feature.name
            failed = np.flatnonzero(in_feature & (status == "error"))
            sources = failed[rng.random(failed.size) < 0.7]
            candidates = np.flatnonzero(in_feature & (status == "ok"))
            if not sources.size or candidates.size < sources.size:
                continue
            targets = rng.choice(candidates, sources.size, replace=False)
            for name in (
                "provider",
                "model",
                "operation",
                "prompt_hash",
                "prefix_hash",
                "end_user",
            ):
                columns[name][targets] = columns[name][sources]
            for name in ("input_tokens", "prefix_tokens"):
                numbers[name][targets] = numbers[name][sources]
            numbers["timestamp"][targets] = numbers["timestamp"][sources] + rng.integers(
                2_000_000, 60_000_000, sources.size
            )
            latency[targets] = latency[sources]
            again = rng.random(sources.size) < 0.2
            status[targets[again]] = "error"
            columns["error_type"][targets[again]] = columns["error_type"][sources[again]]
            numbers["output_tokens"][targets[again]] = 0
            numbers["reasoning_tokens"][targets[again]] = 0


def write_demo_file(
    path: Path, *, rows: int, seed: int, fmt: str = "csv", end: datetime | None = None
) -> int:
    """Write the workload as a CSV or JSON Lines usage export (for uploads and benchmarks)."""
    if fmt not in ("csv", "jsonl"):
        raise ValueError("fmt must be csv or jsonl")
    db = duckdb.connect()
    written = 0
    path = Path(path)
    part = path.with_suffix(path.suffix + ".part")
    try:
        with path.open("wb") as out:
            for number, chunk in enumerate(DemoWorkload(rows, seed, end=end).chunks()):
                db.register("chunk", chunk)
                options = "(FORMAT CSV, HEADER true)" if fmt == "csv" else "(FORMAT JSON)"
                db.execute(
                    "COPY (SELECT strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%gZ') AS timestamp, "
                    "provider, model, operation, input_tokens, output_tokens, "
                    "cached_input_tokens, reasoning_tokens, latency_ms, ttft_ms, status, "
                    "error_type, feature, array_to_string(tags, ',') AS tags, end_user, "
                    "prompt_hash, prefix_hash, prefix_tokens, request_id FROM chunk) "
                    f"TO '{part}' {options}"
                )
                db.unregister("chunk")
                data = part.read_bytes()
                if fmt == "csv" and number:
                    data = data.split(b"\n", 1)[1]
                out.write(data)
                written += chunk.num_rows
    finally:
        part.unlink(missing_ok=True)
        db.close()
    return written
