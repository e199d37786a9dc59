"""Spend anomalies: a model's or a feature's day far outside its usual range.

The baseline of a day is the spend of the days of the same kind among the 28 before it: working
days (Monday to Friday) for a working day, weekend days for a weekend day, as most usage follows
the working week and a quiet Saturday is not news. A day without rows counts as $0. The baseline
is summarized robustly: its median, and its spread as the median absolute deviation (MAD)
scaled by 1.4826 so that it estimates a standard deviation on normal data. A day is anomalous
when

    |spend - median| > K x 1.4826 x MAD   and   |spend - median| >= max(MIN_DELTA_USD,
                                                                    MIN_DELTA_SHARE x median)

The second condition keeps a series whose spend barely moves (MAD near $0) from alerting on a
few cents. A baseline needs rows on at least half its days, so a series that just began has
none yet. A run of anomalous days in the same direction alerts once, on its first day. Complete
days are judged both ways; today, still under way, only upwards (its spend can only grow).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from statistics import median

WINDOW_DAYS = 28
# the share of a baseline's days that must have rows
MIN_BASELINE_SHARE = 0.5
K = Decimal(4)
MAD_SCALE = Decimal("1.4826")
MIN_DELTA_USD = Decimal(5)
MIN_DELTA_SHARE = Decimal("0.3")


@dataclass(frozen=True, slots=True)
class Baseline:
    median: Decimal
    spread: Decimal  # 1.4826 x MAD

    @property
    def allowance(self) -> Decimal:
        """How far from the median a day may be before it is anomalous."""
        return max(K * self.spread, MIN_DELTA_USD, MIN_DELTA_SHARE * self.median)


@dataclass(frozen=True, slots=True)
class Anomaly:
    day: date
    spend: Decimal
    baseline: Baseline
    direction: str  # "high" | "low"

    @property
    def bound(self) -> Decimal:
        """The edge of the usual range the day went past."""
        if self.direction == "high":
            return self.baseline.median + self.baseline.allowance
        return max(self.baseline.median - self.baseline.allowance, Decimal(0))


def weekend(day: date) -> bool:
    return day.weekday() >= 5


def baseline_days(day: date) -> list[date]:
    """The days of the same kind (working or weekend) among the 28 before `day`."""
    before = (day - timedelta(days=back) for back in range(1, WINDOW_DAYS + 1))
    return [other for other in before if weekend(other) == weekend(day)]


def baseline(daily: Mapping[date, Decimal], day: date) -> Baseline | None:
    """The robust baseline of `day`; None without enough history."""
    days = baseline_days(day)
    if sum(1 for other in days if other in daily) < MIN_BASELINE_SHARE * len(days):
        return None
    history = [daily.get(other, Decimal(0)) for other in days]
    center = median(history)
    mad = median(abs(value - center) for value in history)
    return Baseline(median=center, spread=MAD_SCALE * mad)


def judge(daily: Mapping[date, Decimal], day: date, *, upward_only: bool = False) -> Anomaly | None:
    """The anomaly of one day, or None when it is in range (or has no baseline)."""
    reference = baseline(daily, day)
    if reference is None:
        return None
    spend = daily.get(day, Decimal(0))
    delta = spend - reference.median
    if abs(delta) <= reference.allowance or (upward_only and delta < 0):
        return None
    return Anomaly(
        day=day, spend=spend, baseline=reference, direction="high" if delta > 0 else "low"
    )


def anomalies(
    daily: Mapping[date, Decimal], days: Iterable[date], *, today: date | None = None
) -> list[Anomaly]:
    """The anomalies among `days` that begin a run: the day before is not anomalous the same
    way. `today` (if among them) is judged upwards only."""
    found = []
    for day in days:
        anomaly = judge(daily, day, upward_only=day == today)
        if anomaly is None:
            continue
        before = judge(daily, day - timedelta(days=1))
        if before is None or before.direction != anomaly.direction:
            found.append(anomaly)
    return found
