"""Typed answers of the ledger: what the API serializes and the agents read as tool results.

USD amounts are exact `Decimal`s (the ledger keeps 12 decimal places); in JSON they become
numbers rounded to the micro-dollar, which is exact to the cent.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from apex.timestamps import as_utc, format_timestamp

MICRO = Decimal("0.000001")

Usd = Annotated[
    Decimal,
    PlainSerializer(
        lambda value: float(Decimal(value).quantize(MICRO)), return_type=float, when_used="json"
    ),
]
UtcTime = Annotated[
    datetime,
    PlainSerializer(
        lambda value: format_timestamp(as_utc(value)), return_type=str, when_used="json"
    ),
]


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Spend(_Result):
    """Spend over some requests, some of which may be of models no price is known for: their
    cost is not in `cost_usd`, and `unpriced_requests` says how many they are. In JSON, the
    cost of requests none of which could be priced is null, never a misleading 0."""

    requests: int
    cost_usd: Usd
    unpriced_requests: int = 0

    @model_serializer(mode="wrap")
    def _unknown_cost_is_null(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        if info.mode_is_json() and self.requests and self.unpriced_requests == self.requests:
            data["cost_usd"] = None
        return data


def share(part: int, whole: int) -> float:
    """part / whole, 0.0 for an empty whole."""
    return part / whole if whole else 0.0


class UsagePeriod(_Result):
    """Half-open [start, end) in UTC."""

    start: UtcTime
    end: UtcTime


class TimeSpan(_Result):
    """First and last moment of some rows (`from`/`to` in JSON); empty when there are none."""

    start: UtcTime | None = Field(default=None, serialization_alias="from")
    end: UtcTime | None = Field(default=None, serialization_alias="to")


class LedgerBounds(_Result):
    requests: int
    first_timestamp: UtcTime | None
    last_timestamp: UtcTime | None


class ColumnCoverage(_Result):
    """How many of the rows in a period carry each optional column: what an analysis can use."""

    requests: int
    latency_rows: int
    ttft_rows: int
    feature_rows: int
    prompt_hash_rows: int
    prefix_hash_rows: int
    priced_rows: int
    output_token_rows: int


class UsageNames(_Result):
    """One (provider, model, feature) combination of a tenant's rows."""

    provider: str
    model: str
    feature: str
    requests: int


class UsageTotals(_Spend):
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    errors: int
    first_timestamp: UtcTime | None
    last_timestamp: UtcTime | None
    cache_write_input_tokens: int = 0


class ModelUsage(_Spend):
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    errors: int
    cache_write_input_tokens: int = 0
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    # defaulted: the tail is read for the usage page, and figures built elsewhere may omit it
    p99_latency_ms: float | None = None


class FeatureUsage(_Spend):
    feature: str
    input_tokens: int
    output_tokens: int
    errors: int
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    p99_latency_ms: float | None = None


class TagUsage(_Spend):
    tag: str


class DayUsage(_Spend):
    day: date
    input_tokens: int
    output_tokens: int
    errors: int


class DayModelUsage(_Spend):
    """One model's spend on one UTC day: a day's rows sum to that day's `DayUsage`."""

    day: date
    provider: str
    model: str


class ModelFeatureUsage(_Spend):
    provider: str
    model: str
    feature: str
    operation: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    errors: int
    p50_input_tokens: float
    p50_output_tokens: float
    p95_output_tokens: float


class LatencyStats(_Result):
    provider: str
    model: str
    feature: str
    requests: int
    p50_latency_ms: float
    p95_latency_ms: float
    p99_latency_ms: float
    max_latency_ms: float
    ttft_requests: int
    p50_ttft_ms: float | None
    p95_ttft_ms: float | None


class LatencyReport(_Result):
    """Overall percentiles (feature/model empty) and the same per provider, model and feature."""

    overall: LatencyStats | None
    groups: list[LatencyStats]


class ErrorGroup(_Result):
    provider: str
    model: str
    error_type: str
    requests: int
    cost_usd: Usd
    input_tokens: int
    output_tokens: int


class RetryGroup(_Result):
    """Calls that repeat a failed call (same prompt, provider, model) within the retry window."""

    provider: str
    model: str
    retries: int
    recovered: int
    cost_usd: Usd


class ErrorRetryWaste(_Result):
    error_requests: int
    error_cost_usd: Usd
    retry_requests: int
    retry_cost_usd: Usd
    retry_window_s: int
    errors: list[ErrorGroup]
    retries: list[RetryGroup]


class DuplicateGroup(_Result):
    provider: str
    model: str
    hashed_requests: int
    distinct_prompts: int
    repeated_prompts: int
    duplicate_requests: int
    duplicate_cost_usd: Usd


class RepeatedPrompt(_Result):
    prompt_hash: str
    provider: str
    model: str
    calls: int
    cost_usd: Usd


class DuplicatePrompts(_Result):
    """Exact repeats of a successful prompt; the savings keep the dearest call of each prompt."""

    requests: int
    hashed_requests: int
    duplicate_requests: int
    duplicate_cost_usd: Usd
    groups: list[DuplicateGroup]
    top_prompts: list[RepeatedPrompt]

    @property
    def duplicate_share(self) -> float:
        return share(self.duplicate_requests, self.requests)


class PrefixGroup(_Result):
    provider: str
    model: str
    prefixes: int
    requests: int
    input_tokens: int
    cached_input_tokens: int
    repeated_prefix_tokens: int


class SharedPrefixes(_Result):
    """Calls that share a prompt prefix with at least one other call of the same model.

    `repeated_prefix_tokens` counts the prefix tokens sent again after the first call of each
    prefix: what provider prompt caching would bill at the cached-input price. The prefix
    length is `prefix_tokens` when the source gave it, else the group's shortest input.
    """

    requests: int
    shared_requests: int
    input_tokens: int
    repeated_prefix_tokens: int
    groups: list[PrefixGroup]

    @property
    def shared_share(self) -> float:
        return share(self.shared_requests, self.requests)


class TokenOutlierGroup(_Result):
    provider: str
    model: str
    feature: str
    requests: int
    p50_tokens: float
    p95_tokens: float
    p99_tokens: float
    max_tokens: int
    threshold: int
    outlier_requests: int
    outlier_tokens: int
    outlier_cost_usd: Usd

    @property
    def excess_tokens(self) -> int:
        """Tokens above the threshold: what a cap at the group's p95 would have removed."""
        return self.outlier_tokens - self.outlier_requests * self.threshold


class HourProfile(_Result):
    weekday: int
    hour: int
    requests: int
    cost_usd: Usd
    tokens: int


class HourOfDay(_Result):
    """Per UTC hour (0-23) and per ISO weekday (1 = Monday) x hour."""

    hours: list[HourProfile]
    cells: list[HourProfile]


class BatchableGroup(_Result):
    provider: str
    model: str
    feature: str
    requests: int
    cost_usd: Usd
    input_tokens: int
    output_tokens: int
    tagged_requests: int
    off_hours_requests: int


class BatchableShare(_Result):
    """Traffic no user waits for: batch-like feature or tag names, or no end user off-hours."""

    requests: int
    cost_usd: Usd
    batchable_requests: int
    batchable_cost_usd: Usd
    keywords: list[str]
    groups: list[BatchableGroup]

    @property
    def batchable_share(self) -> float:
        return share(self.batchable_requests, self.requests)


class UsageSummary(_Result):
    period: TimeSpan
    totals: UsageTotals
    by_model: list[ModelUsage]
    by_feature: list[FeatureUsage]
    by_day: list[DayUsage]
    by_day_model: list[DayModelUsage]
