"""What one analysis covers (whose rows, which period, which features) and what was read.

`AnalysisScope` is built by triage from the caller's identity and the question; nothing in it
comes from text except the period and the feature names, and those only narrow the caller's own
rows. `UsageData` is what the data agent read for that scope, the one input of the optimization
and reporting agents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from apex.analytics.results import (
    BatchableShare,
    ColumnCoverage,
    DayUsage,
    DuplicatePrompts,
    ErrorRetryWaste,
    FeatureUsage,
    LatencyReport,
    ModelFeatureUsage,
    ModelUsage,
    SharedPrefixes,
    TokenOutlierGroup,
    UsagePeriod,
    UsageTotals,
)
from apex.timestamps import as_utc, format_timestamp

DAYS_PER_MONTH = Decimal(30)
MICRO = Decimal("0.000001")


def usd(value: Decimal) -> float:
    """A USD amount for the report: exact to the micro-dollar, so exact to the cent."""
    return float(value.quantize(MICRO))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AnalysisScope:
    tenant_id: str
    period: UsagePeriod
    features: tuple[str, ...] = ()

    @property
    def days(self) -> Decimal:
        seconds = Decimal(str((self.period.end - self.period.start).total_seconds()))
        return max(seconds / Decimal(86_400), Decimal("0.000001"))

    def monthly(self, amount: Decimal) -> Decimal:
        """A period amount scaled to 30 days."""
        return amount * DAYS_PER_MONTH / self.days

    def period_arguments(self) -> dict[str, str]:
        """The period as tool arguments (the tenant is never an argument: it is the caller)."""
        return self.report_period()

    def report_period(self) -> dict[str, str]:
        return {"from": format_timestamp(as_utc(self.period.start)),
                "to": format_timestamp(as_utc(self.period.end))}

    def covers(self, feature: str) -> bool:
        return not self.features or feature in self.features


@dataclass(slots=True)
class UsageData:
    """Everything the data agent read for one scope; optional parts stay None when not read."""

    totals: UsageTotals
    coverage: ColumnCoverage
    by_model: list[ModelUsage] = field(default_factory=list)
    by_feature: list[FeatureUsage] = field(default_factory=list)
    by_day: list[DayUsage] = field(default_factory=list)
    mix: list[ModelFeatureUsage] = field(default_factory=list)
    latency: LatencyReport | None = None
    duplicates: DuplicatePrompts | None = None
    prefixes: SharedPrefixes | None = None
    output_outliers: list[TokenOutlierGroup] = field(default_factory=list)
    input_outliers: list[TokenOutlierGroup] = field(default_factory=list)
    batchable: BatchableShare | None = None
    errors: ErrorRetryWaste | None = None


@dataclass(frozen=True, slots=True)
class ScopedTotals:
    """The totals of the rows in scope (all of the period's rows, or only named features)."""

    requests: int
    cost_usd: Decimal
    input_tokens: int
    output_tokens: int
    errors: int

    def to_report(self) -> dict[str, Any]:
        return {"requests": self.requests, "cost_usd": usd(self.cost_usd),
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "errors": self.errors}


def scoped_totals(data: UsageData, scope: AnalysisScope) -> ScopedTotals:
    """Totals of the scope: the ledger's own sums, or sums of the per-feature groups."""
    if not scope.features:
        totals = data.totals
        return ScopedTotals(totals.requests, totals.cost_usd, totals.input_tokens,
                            totals.output_tokens, totals.errors)
    rows = [row for row in data.mix if row.feature in scope.features]
    return ScopedTotals(
        requests=sum(row.requests for row in rows),
        cost_usd=sum((row.cost_usd for row in rows), Decimal(0)),
        input_tokens=sum(row.input_tokens for row in rows),
        output_tokens=sum(row.output_tokens for row in rows),
        errors=sum(row.errors for row in rows))


def scoped_models(data: UsageData, scope: AnalysisScope) -> list[dict[str, Any]]:
    """`by_model` of the report for the scope, dearest first."""
    if not scope.features:
        return [{"provider": m.provider, "model": m.model, "requests": m.requests,
                 "cost_usd": usd(m.cost_usd), "p50_latency_ms": m.p50_latency_ms,
                 "p95_latency_ms": m.p95_latency_ms} for m in data.by_model]
    merged: dict[tuple[str, str], list[ModelFeatureUsage]] = {}
    for row in data.mix:
        if row.feature in scope.features:
            merged.setdefault((row.provider, row.model), []).append(row)
    latency = {(g.provider, g.model, g.feature): g
               for g in (data.latency.groups if data.latency else [])}
    models = []
    for (provider, model), rows in merged.items():
        features = {row.feature for row in rows}
        stats = latency.get((provider, model, next(iter(features)))) if len(features) == 1 \
            else None
        models.append({
            "provider": provider, "model": model, "requests": sum(r.requests for r in rows),
            "cost_usd": usd(sum((r.cost_usd for r in rows), Decimal(0))),
            "p50_latency_ms": stats.p50_latency_ms if stats else None,
            "p95_latency_ms": stats.p95_latency_ms if stats else None})
    models.sort(key=lambda m: (-m["cost_usd"], -m["requests"], m["provider"], m["model"]))
    return models
