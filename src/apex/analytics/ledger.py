"""The usage ledger: one typed, tenant-scoped surface over DuckDB (embedded) or ClickHouse.

`Ledger` is the protocol the API and the agents call; `SqlLedger` implements it once over the
statements of `queries.py`, and `DuckDBLedger` (ledger_duckdb.py) / `ClickHouseLedger`
(ledger_clickhouse.py) only say how a statement is run and how rows get in. Every read takes
the caller's tenant id and filters by it: there is no unscoped read of usage rows. Engine work
runs in a worker thread (`asyncio.to_thread`) with its own cursor, so a slow query never blocks
the event loop.

Re-uploads: each row carries `row_key`, a hash of its normalized content (and of the source's
request id when it has one). An upload is staged, then moved into the ledger minus the rows
whose key the tenant already has, so sending the same file twice, or overlapping exports,
counts each call once.
"""

from __future__ import annotations

from typing import Protocol

from apex.analytics.answer_preparation import AnswerPreparation
from apex.analytics.filters import EVERY_ROW, UsageFilter
from apex.analytics.ledger_reads import MIN_OUTLIER_REQUESTS
from apex.analytics.price_overrides import PriceOverrides
from apex.analytics.results import (
    BatchableShare,
    ColumnCoverage,
    DayUsage,
    DuplicatePrompts,
    ErrorRetryWaste,
    FeatureUsage,
    HourOfDay,
    LatencyReport,
    LedgerBounds,
    ModelFeatureUsage,
    ModelUsage,
    SharedPrefixes,
    TagUsage,
    TokenOutlierGroup,
    UsageNames,
    UsagePeriod,
    UsageSummary,
    UsageTotals,
)


class Ledger(Protocol):
    """What callers may ask of the usage ledger. Every method is scoped by `tenant_id`; `where`
    narrows a read further to named models, providers and features."""

    async def summary(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> UsageSummary: ...
    async def totals(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> UsageTotals: ...
    async def by_model(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[ModelUsage]: ...
    async def by_feature(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[FeatureUsage]: ...
    async def by_tag(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[TagUsage]: ...
    async def by_day(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[DayUsage]: ...
    async def by_model_feature(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[ModelFeatureUsage]: ...
    async def latency_percentiles(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        *,
        overall: bool = True,
        where: UsageFilter = EVERY_ROW,
    ) -> LatencyReport: ...
    async def error_retry_waste(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> ErrorRetryWaste: ...
    async def duplicate_prompts(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        top: int = 10,
        *,
        where: UsageFilter = EVERY_ROW,
    ) -> DuplicatePrompts: ...
    async def shared_prefixes(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> SharedPrefixes: ...
    async def token_outliers(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        kind: str = "output",
        min_requests: int = MIN_OUTLIER_REQUESTS,
        *,
        where: UsageFilter = EVERY_ROW,
    ) -> list[TokenOutlierGroup]: ...
    async def hour_of_day(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> HourOfDay: ...
    async def batchable_share(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> BatchableShare: ...
    async def coverage(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> ColumnCoverage: ...
    async def period_bounds(
        self, tenant_id: str, *, where: UsageFilter = EVERY_ROW
    ) -> LedgerBounds: ...
    async def names(self, tenant_id: str) -> list[UsageNames]: ...
    async def default_period(self, tenant_id: str) -> UsagePeriod | None: ...


class SqlLedger(AnswerPreparation, PriceOverrides):
    """The ledger over any engine that runs the statements of `queries.py`: its reads
    (ledger_reads.py), upload records and erasure (upload_records.py), prepared answers
    (answer_preparation.py) and price overrides (price_overrides.py), over the engine hooks
    of ledger_core.py that DuckDBLedger and ClickHouseLedger fill in."""
