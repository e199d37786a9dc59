"""Spend of a coming period, from the scope's daily spend of the last four weeks.

Method: the base is the 28 whole UTC days that end with the day of the caller's newest row (a
day with no rows counts as $0). The projection is the mean daily spend times the days of the
period asked about; the interval is that projection plus or minus 1.96 sample standard deviations
of the daily spend times the square root of those days, which is a 95% interval when days are
independent draws from the last four weeks (it ignores trend and weekly seasonality), floored at
$0. Money stays exact until the figures are rounded to the cent.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from apex.agents.analyses.registry import AnalysisArguments, AnalysisContext, analysis
from apex.analytics.results import UsagePeriod, Usd
from apex.money import format_usd

BASE_DAYS = 28
Z_95 = Decimal("1.96")


class ForecastArguments(AnalysisArguments):
    """`from`/`to` are the base window; `forecast_from`/`forecast_to` the period forecast."""

    forecast_start: AwareDatetime = Field(alias="forecast_from")
    forecast_end: AwareDatetime = Field(alias="forecast_to")


class Forecast(BaseModel):
    model_config = ConfigDict(frozen=True)

    base_days: int
    mean_daily_usd: Usd
    stdev_daily_usd: Usd
    days: float
    projected_cost_usd: Usd
    low_usd: Usd
    high_usd: Usd


def base_window(newest: datetime) -> UsagePeriod:
    """The 28 whole days ending with the newest row's day."""
    end = datetime.combine(newest.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)
    return UsagePeriod(start=end - timedelta(days=BASE_DAYS), end=end)


def _headline(forecast: Forecast) -> str:
    return (
        f"{format_usd(float(forecast.projected_cost_usd))} "
        f"({format_usd(float(forecast.low_usd))} to {format_usd(float(forecast.high_usd))})"
    )


@analysis(
    "forecast",
    "Projected spend of a coming period from the last 28 days' daily spend, with a 95% interval.",
    ForecastArguments,
    _headline,
)
async def forecast(context: AnalysisContext, arguments: ForecastArguments) -> Forecast:
    days = await context.ledger.by_day(
        context.tenant_id, arguments.period, where=arguments.where(context)
    )
    count = max(1, round((arguments.end - arguments.start).total_seconds() / 86_400))
    daily = [day.cost_usd for day in days] + [Decimal(0)] * max(0, count - len(days))
    mean = sum(daily, Decimal(0)) / count
    variance = (
        sum(((value - mean) ** 2 for value in daily), Decimal(0)) / (count - 1)
        if count > 1
        else Decimal(0)
    )
    stdev = variance.sqrt()
    span = Decimal(
        str((arguments.forecast_end - arguments.forecast_start).total_seconds())
    ) / Decimal(86_400)
    projected = mean * span
    spread = Z_95 * stdev * Decimal(str(math.sqrt(float(span))))
    return Forecast(
        base_days=count,
        mean_daily_usd=mean,
        stdev_daily_usd=stdev,
        days=float(span),
        projected_cost_usd=projected,
        low_usd=max(Decimal(0), projected - spread),
        high_usd=projected + spread,
    )
