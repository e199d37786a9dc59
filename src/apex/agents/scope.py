"""What the recommendation finders work on: the scope (whose rows, which period, which
features) and the signals the data agent read for it.

`AnalysisScope` is built from the caller's identity and the understood question; nothing in it
comes from text except the period and the feature names, and those only narrow the caller's own
rows. `UsageData` holds the reads behind each kind of saving, already narrowed to the scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from apex.analytics.filters import EVERY_ROW, UsageFilter
from apex.analytics.results import (
    BatchableShare,
    ColumnCoverage,
    DayUsage,
    DuplicatePrompts,
    ErrorRetryWaste,
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


def micro_usd(value: Decimal) -> float:
    """A USD amount for the report: exact to the micro-dollar, so exact to the cent."""
    return float(value.quantize(MICRO))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def period_days(period: UsagePeriod) -> Decimal:
    """The days a period spans, exactly (never zero)."""
    seconds = Decimal(str((period.end - period.start).total_seconds()))
    return max(seconds / Decimal(86_400), Decimal("0.000001"))


def monthly(amount: Decimal, period: UsagePeriod) -> Decimal:
    """A period's amount scaled to 30 days (PROTOCOL.md: `monthly_*`)."""
    return amount * DAYS_PER_MONTH / period_days(period)


@dataclass(frozen=True, slots=True)
class AnalysisScope:
    tenant_id: str
    period: UsagePeriod
    where: UsageFilter = EVERY_ROW

    @property
    def days(self) -> Decimal:
        return period_days(self.period)

    def monthly(self, amount: Decimal) -> Decimal:
        """A period amount scaled to 30 days."""
        return monthly(amount, self.period)

    def period_arguments(self) -> dict[str, Any]:
        """The period and scope as tool arguments (the tenant is never an argument: it is the
        caller)."""
        names = {
            "models": list(self.where.models),
            "providers": list(self.where.providers),
            "features": list(self.where.features),
        }
        return {**self.report_period(), **{key: value for key, value in names.items() if value}}

    def report_period(self) -> dict[str, str]:
        return {
            "from": format_timestamp(as_utc(self.period.start)),
            "to": format_timestamp(as_utc(self.period.end)),
        }


@dataclass(slots=True)
class UsageData:
    """Everything the data agent read for one scope; optional parts stay None when not read."""

    totals: UsageTotals
    coverage: ColumnCoverage
    by_model: list[ModelUsage] = field(default_factory=list)
    by_day: list[DayUsage] = field(default_factory=list)
    mix: list[ModelFeatureUsage] = field(default_factory=list)
    latency: LatencyReport | None = None
    duplicates: DuplicatePrompts | None = None
    prefixes: SharedPrefixes | None = None
    output_outliers: list[TokenOutlierGroup] = field(default_factory=list)
    input_outliers: list[TokenOutlierGroup] = field(default_factory=list)
    batchable: BatchableShare | None = None
    errors: ErrorRetryWaste | None = None
