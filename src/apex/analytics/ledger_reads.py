"""Every read of the ledger, each a typed result built from one statement's rows.

The synchronous `_name` methods run in a worker thread; the async ones are the `Ledger`
protocol's surface.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from apex.analytics import prompt_repeats
from apex.analytics import queries as q
from apex.analytics.filters import ANALYSED_ROWS, EVERY_ROW, UsageFilter
from apex.analytics.ledger_core import LedgerCore
from apex.analytics.periods import default_period_ending
from apex.analytics.results import (
    BatchableGroup,
    BatchableShare,
    ColumnCoverage,
    DayModelUsage,
    DayUsage,
    DuplicateGroup,
    DuplicatePrompts,
    ErrorGroup,
    ErrorRetryWaste,
    FeatureUsage,
    HourOfDay,
    HourProfile,
    LatencyReport,
    LatencyStats,
    LedgerBounds,
    ModelFeatureUsage,
    ModelUsage,
    PrefixGroup,
    RepeatedPrompt,
    RetryGroup,
    SharedPrefixes,
    TagUsage,
    TimeSpan,
    TokenOutlierGroup,
    UsageNames,
    UsagePeriod,
    UsageSummary,
    UsageTotals,
)
from apex.analytics.row_values import (
    as_day,
    as_decimal,
    as_float,
    as_int,
    latency_levels,
    levels_of,
    utc_or_none,
)

MIN_OUTLIER_REQUESTS = 20


class LedgerReads(LedgerCore):
    """The reads of the `Ledger` protocol over the core's statements."""

    # -- reads ------------------------------------------------------------------------------
    def _totals(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> UsageTotals:
        row = self._query(q.SUMMARY, tenant_id, period, where)[0]
        requests = as_int(row[0])
        return UsageTotals(
            requests=requests,
            cost_usd=as_decimal(row[1]),
            input_tokens=as_int(row[2]),
            output_tokens=as_int(row[3]),
            cached_input_tokens=as_int(row[4]),
            reasoning_tokens=as_int(row[5]),
            errors=as_int(row[6]),
            unpriced_requests=as_int(row[7]),
            first_timestamp=utc_or_none(row[8]) if requests else None,
            last_timestamp=utc_or_none(row[9]) if requests else None,
            cache_write_input_tokens=as_int(row[10]),
        )

    def _by_model(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[ModelUsage]:
        return [
            ModelUsage(
                provider=r[0],
                model=r[1],
                requests=as_int(r[2]),
                cost_usd=as_decimal(r[3]),
                input_tokens=as_int(r[4]),
                output_tokens=as_int(r[5]),
                cached_input_tokens=as_int(r[6]),
                reasoning_tokens=as_int(r[7]),
                errors=as_int(r[8]),
                unpriced_requests=as_int(r[9]),
                **latency_levels(r[10]),
                cache_write_input_tokens=as_int(r[11]),
            )
            for r in self._query(q.BY_MODEL, tenant_id, period, where)
        ]

    def _by_feature(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[FeatureUsage]:
        return [
            FeatureUsage(
                feature=r[0],
                requests=as_int(r[1]),
                cost_usd=as_decimal(r[2]),
                input_tokens=as_int(r[3]),
                output_tokens=as_int(r[4]),
                errors=as_int(r[5]),
                **latency_levels(r[6]),
                unpriced_requests=as_int(r[7]),
            )
            for r in self._query(q.BY_FEATURE, tenant_id, period, where)
        ]

    def _by_tag(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[TagUsage]:
        return [
            TagUsage(
                tag=r[0],
                requests=as_int(r[1]),
                cost_usd=as_decimal(r[2]),
                unpriced_requests=as_int(r[3]),
            )
            for r in self._query(q.BY_TAG, tenant_id, period, where)
        ]

    def _by_day(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[DayUsage]:
        return [
            DayUsage(
                day=as_day(r[0]),
                requests=as_int(r[1]),
                cost_usd=as_decimal(r[2]),
                input_tokens=as_int(r[3]),
                output_tokens=as_int(r[4]),
                errors=as_int(r[5]),
                unpriced_requests=as_int(r[6]),
            )
            for r in self._query(q.BY_DAY, tenant_id, period, where)
        ]

    def _by_day_model(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[DayModelUsage]:
        return [
            DayModelUsage(
                day=as_day(r[0]),
                provider=r[1],
                model=r[2],
                requests=as_int(r[3]),
                cost_usd=as_decimal(r[4]),
                unpriced_requests=as_int(r[5]),
            )
            for r in self._query(q.BY_DAY_MODEL, tenant_id, period, where)
        ]

    def _by_model_feature(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[ModelFeatureUsage]:
        tokens = {
            (r[0], r[1]): levels_of(r[2], len(q.MIX_TOKEN_LEVELS))
            for r in self._query(q.MODEL_FEATURE_TOKENS, tenant_id, period, where)
        }
        # a group whose first rows were committed between the two statements has no
        # percentiles yet
        unknown: list[float | None] = [None] * len(q.MIX_TOKEN_LEVELS)
        return [
            ModelFeatureUsage(
                provider=r[0],
                model=r[1],
                feature=r[2],
                operation=r[3],
                requests=as_int(r[4]),
                cost_usd=as_decimal(r[5]),
                input_tokens=as_int(r[6]),
                output_tokens=as_int(r[7]),
                cached_input_tokens=as_int(r[8]),
                reasoning_tokens=as_int(r[9]),
                errors=as_int(r[10]),
                p50_input_tokens=tokens.get((r[12], "input"), unknown)[0],
                p50_output_tokens=tokens.get((r[12], "output"), unknown)[0],
                p95_output_tokens=tokens.get((r[12], "output"), unknown)[1],
                unpriced_requests=as_int(r[11]),
            )
            for r in self._query(q.BY_MODEL_FEATURE, tenant_id, period, where)
        ]

    def _summary(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> UsageSummary:
        totals = self._totals(tenant_id, period, where)
        if period is None:
            shown = TimeSpan(start=totals.first_timestamp, end=totals.last_timestamp)
        else:
            shown = TimeSpan(start=period.start, end=period.end)
        return UsageSummary(
            period=shown,
            totals=totals,
            by_model=self._by_model(tenant_id, period, where),
            by_feature=self._by_feature(tenant_id, period, where),
            by_day=self._by_day(tenant_id, period, where),
            by_day_model=self._by_day_model(tenant_id, period, where),
        )

    @staticmethod
    def _latency(provider: str, model: str, feature: str, r: Sequence[Any]) -> LatencyStats:
        p50, p95, p99 = levels_of(r[1], 3)
        ttft = levels_of(r[4], 2) if as_int(r[3]) else [None, None]
        return LatencyStats(
            provider=provider,
            model=model,
            feature=feature,
            requests=as_int(r[0]),
            p50_latency_ms=p50,
            p95_latency_ms=p95,
            p99_latency_ms=p99,
            max_latency_ms=as_float(r[2]),
            ttft_requests=as_int(r[3]),
            p50_ttft_ms=ttft[0],
            p95_ttft_ms=ttft[1],
        )

    def _latency_percentiles(
        self,
        tenant_id: str,
        period: UsagePeriod | None,
        with_overall: bool,
        where: UsageFilter = EVERY_ROW,
    ) -> LatencyReport:
        overall_rows = (
            self._query(q.LATENCY_OVERALL, tenant_id, period, where) if with_overall else []
        )
        overall = None
        if overall_rows and as_int(overall_rows[0][0]):
            overall = self._latency("", "", "", overall_rows[0])
        groups = [
            self._latency(r[0], r[1], r[2], r[3:])
            for r in self._query(q.LATENCY, tenant_id, period, where)
        ]
        return LatencyReport(overall=overall, groups=groups)

    def _error_retry_waste(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> ErrorRetryWaste:
        errors = [
            ErrorGroup(
                provider=r[0],
                model=r[1],
                error_type=r[2],
                requests=as_int(r[3]),
                cost_usd=as_decimal(r[4]),
                input_tokens=as_int(r[5]),
                output_tokens=as_int(r[6]),
            )
            for r in self._query(q.ERRORS, tenant_id, period, where)
        ]
        retries = [
            RetryGroup(
                provider=r[0],
                model=r[1],
                retries=as_int(r[2]),
                recovered=as_int(r[3]),
                cost_usd=as_decimal(r[4]),
            )
            for r in self._query(q.RETRIES, tenant_id, period, where)
        ]
        return ErrorRetryWaste(
            error_requests=sum(e.requests for e in errors),
            error_cost_usd=sum((e.cost_usd for e in errors), Decimal(0)),
            retry_requests=sum(r.retries for r in retries),
            retry_cost_usd=sum((r.cost_usd for r in retries), Decimal(0)),
            retry_window_s=q.RETRY_WINDOW_S,
            errors=errors,
            retries=retries,
        )

    def _duplicate_prompts(
        self, tenant_id: str, period: UsagePeriod | None, top: int, where: UsageFilter = EVERY_ROW
    ) -> DuplicatePrompts:
        query = prompt_repeats.DUPLICATES if self._rollups_ready(tenant_id) else q.DUPLICATES
        rows = self._query(query, tenant_id, period, where, limit=max(1, top))
        # (repeated prompts, duplicate requests, their cost) per model with repeats
        repeats = {(r[1], r[2]): r[4:7] for r in rows if r[0] == "model"}
        groups = []
        for provider, model, answered in self._query(q.ANSWERED_PROMPTS, tenant_id, period, where):
            repeated, duplicates, cost = repeats.get((provider, model), (0, 0, 0))
            groups.append(
                DuplicateGroup(
                    provider=provider,
                    model=model,
                    hashed_requests=as_int(answered),
                    distinct_prompts=as_int(answered) - as_int(duplicates),
                    repeated_prompts=as_int(repeated),
                    duplicate_requests=as_int(duplicates),
                    duplicate_cost_usd=as_decimal(cost),
                )
            )
        groups.sort(
            key=lambda g: (-g.duplicate_cost_usd, -g.duplicate_requests, g.provider, g.model)
        )
        top_prompts = sorted(
            (
                RepeatedPrompt(
                    prompt_hash=r[3],
                    provider=r[1],
                    model=r[2],
                    calls=as_int(r[4]),
                    cost_usd=as_decimal(r[6]),
                )
                for r in rows
                if r[0] == "prompt" and top > 0
            ),
            key=lambda p: (-p.calls, -p.cost_usd, p.prompt_hash, p.provider, p.model),
        )
        return DuplicatePrompts(
            requests=self._totals(tenant_id, period, where).requests,
            hashed_requests=sum(g.hashed_requests for g in groups),
            duplicate_requests=sum(g.duplicate_requests for g in groups),
            duplicate_cost_usd=sum((g.duplicate_cost_usd for g in groups), Decimal(0)),
            groups=groups,
            top_prompts=top_prompts,
        )

    def _shared_prefixes(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> SharedPrefixes:
        totals = self._totals(tenant_id, period, where)
        groups = [
            PrefixGroup(
                provider=r[0],
                model=r[1],
                prefixes=as_int(r[2]),
                requests=as_int(r[3]),
                input_tokens=as_int(r[4]),
                cached_input_tokens=as_int(r[5]),
                repeated_prefix_tokens=as_int(r[6]),
            )
            for r in self._query(q.PREFIXES, tenant_id, period, where)
        ]
        return SharedPrefixes(
            requests=totals.requests,
            shared_requests=sum(g.requests for g in groups),
            input_tokens=totals.input_tokens,
            repeated_prefix_tokens=sum(g.repeated_prefix_tokens for g in groups),
            groups=groups,
        )

    def _token_outliers(
        self,
        tenant_id: str,
        period: UsagePeriod | None,
        kind: str,
        min_requests: int,
        where: UsageFilter = EVERY_ROW,
    ) -> list[TokenOutlierGroup]:
        if kind not in q.TOKEN_OUTLIERS:
            raise ValueError("kind must be 'input' or 'output'")
        return [
            TokenOutlierGroup(
                provider=r[0],
                model=r[1],
                feature=r[2],
                requests=as_int(r[3]),
                p50_tokens=levels_of(r[4], 3)[0],
                p95_tokens=levels_of(r[4], 3)[1],
                p99_tokens=levels_of(r[4], 3)[2],
                max_tokens=as_int(r[5]),
                threshold=as_int(r[6]),
                outlier_requests=as_int(r[7]),
                outlier_tokens=as_int(r[8]),
                outlier_cost_usd=as_decimal(r[9]),
            )
            for r in self._query(
                q.TOKEN_OUTLIERS[kind], tenant_id, period, where, min_requests=max(1, min_requests)
            )
        ]

    def _hour_of_day(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> HourOfDay:
        cells = [
            HourProfile(
                weekday=as_int(r[0]),
                hour=as_int(r[1]),
                requests=as_int(r[2]),
                cost_usd=as_decimal(r[3]),
                tokens=as_int(r[4]),
            )
            for r in self._query(q.HOURLY, tenant_id, period, where)
        ]
        hours = []
        for hour in range(24):
            in_hour = [cell for cell in cells if cell.hour == hour]
            hours.append(
                HourProfile(
                    weekday=0,
                    hour=hour,
                    requests=sum(c.requests for c in in_hour),
                    cost_usd=sum((c.cost_usd for c in in_hour), Decimal(0)),
                    tokens=sum(c.tokens for c in in_hour),
                )
            )
        return HourOfDay(hours=hours, cells=cells)

    def _batchable_share(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> BatchableShare:
        totals = self._totals(tenant_id, period, where)
        groups = [
            BatchableGroup(
                provider=r[0],
                model=r[1],
                feature=r[2],
                requests=as_int(r[3]),
                cost_usd=as_decimal(r[4]),
                input_tokens=as_int(r[5]),
                output_tokens=as_int(r[6]),
                tagged_requests=as_int(r[7]),
                off_hours_requests=as_int(r[8]),
            )
            for r in self._query(q.BATCHABLE, tenant_id, period, where)
        ]
        return BatchableShare(
            requests=totals.requests,
            cost_usd=totals.cost_usd,
            batchable_requests=sum(g.requests for g in groups),
            batchable_cost_usd=sum((g.cost_usd for g in groups), Decimal(0)),
            keywords=list(q.BATCH_KEYWORDS),
            groups=groups,
        )

    def _coverage(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> ColumnCoverage:
        row = self._query(q.COVERAGE, tenant_id, period, where)[0]
        return ColumnCoverage(
            requests=as_int(row[0]),
            latency_rows=as_int(row[1]),
            ttft_rows=as_int(row[2]),
            feature_rows=as_int(row[3]),
            prompt_hash_rows=as_int(row[4]),
            prefix_hash_rows=as_int(row[5]),
            priced_rows=as_int(row[6]),
            output_token_rows=as_int(row[7]),
        )

    def _period_bounds(self, tenant_id: str, where: UsageFilter = EVERY_ROW) -> LedgerBounds:
        row = self._query(q.BOUNDS, tenant_id, None, where)[0]
        requests = as_int(row[0])
        return LedgerBounds(
            requests=requests,
            first_timestamp=utc_or_none(row[1]) if requests else None,
            last_timestamp=utc_or_none(row[2]) if requests else None,
        )

    def _names(self, tenant_id: str) -> list[UsageNames]:
        return [
            UsageNames(provider=r[0], model=r[1], feature=r[2], requests=as_int(r[3]))
            for r in self._query(q.NAMES, tenant_id, None)
        ]

    # -- the async surface ------------------------------------------------------------------
    # `where` narrows a read to named models, providers and features (a question's scope)
    async def summary(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> UsageSummary:
        return await self._run(self._summary, tenant_id, period, where)

    async def totals(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> UsageTotals:
        return await self._run(self._totals, tenant_id, period, where)

    async def by_model(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[ModelUsage]:
        return await self._run(self._by_model, tenant_id, period, where)

    async def by_feature(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[FeatureUsage]:
        return await self._run(self._by_feature, tenant_id, period, where)

    async def by_tag(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[TagUsage]:
        return await self._run(self._by_tag, tenant_id, period, where)

    async def by_day(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[DayUsage]:
        return await self._run(self._by_day, tenant_id, period, where)

    async def by_model_feature(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[ModelFeatureUsage]:
        return await self._run(self._by_model_feature, tenant_id, period, where)

    async def latency_percentiles(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        *,
        overall: bool = True,
        where: UsageFilter = EVERY_ROW,
    ) -> LatencyReport:
        """Per-group latency; `overall=False` skips the whole-period figures (a full pass over
        the rows) for callers that only read the groups."""
        return await self._run(self._latency_percentiles, tenant_id, period, overall, where)

    async def error_retry_waste(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> ErrorRetryWaste:
        return await self._run(self._error_retry_waste, tenant_id, period, where)

    async def duplicate_prompts(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        top: int = 10,
        *,
        where: UsageFilter = EVERY_ROW,
    ) -> DuplicatePrompts:
        return await self._run(self._duplicate_prompts, tenant_id, period, top, where)

    async def shared_prefixes(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> SharedPrefixes:
        return await self._run(self._shared_prefixes, tenant_id, period, where)

    async def token_outliers(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        kind: str = "output",
        min_requests: int = MIN_OUTLIER_REQUESTS,
        *,
        where: UsageFilter = EVERY_ROW,
    ) -> list[TokenOutlierGroup]:
        return await self._run(self._token_outliers, tenant_id, period, kind, min_requests, where)

    async def hour_of_day(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> HourOfDay:
        return await self._run(self._hour_of_day, tenant_id, period, where)

    async def batchable_share(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> BatchableShare:
        return await self._run(self._batchable_share, tenant_id, period, where)

    async def coverage(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> ColumnCoverage:
        return await self._run(self._coverage, tenant_id, period, where)

    async def period_bounds(
        self, tenant_id: str, *, where: UsageFilter = EVERY_ROW
    ) -> LedgerBounds:
        return await self._run(self._period_bounds, tenant_id, where)

    async def names(self, tenant_id: str) -> list[UsageNames]:
        """Every (provider, model, feature) of the tenant's rows, with its row count."""
        return await self._run(self._names, tenant_id)

    async def default_period(self, tenant_id: str) -> UsagePeriod | None:
        """The 30 days that end at the caller's newest row (PROTOCOL's default report period),
        which is never one of the platform's own calls."""
        bounds = await self.period_bounds(tenant_id, where=ANALYSED_ROWS)
        if bounds.last_timestamp is None:
            return None
        return default_period_ending(bounds.last_timestamp)
