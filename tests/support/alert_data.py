"""Planted usage for budgets and anomalies, and what it must raise, computed here from the rows.

Two steady series over the 40 days before today (gpt-4o on `classify`, claude-sonnet-4 on
`chat`), a spike of gpt-4o yesterday, a series too young for a baseline (gpt-4.1 on
`extract`, five days with a huge last one), and a little spend today, halfway between midnight
and now. The expected anomalies come from numpy's median over the rows as planted, following
the rule README documents (working days against working days, weekends against weekends); the
code under test is never asked for an expectation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import numpy as np

from apex.monitoring.anomalies import (
    MAD_SCALE,
    MIN_BASELINE_SHARE,
    MIN_DELTA_SHARE,
    MIN_DELTA_USD,
    WINDOW_DAYS,
    K,
)
from tests.support.answer_rows import UsageRow, usage_csv

HISTORY_DAYS = 40
# ISO weekdays compared with each other: Monday to Friday, and Saturday with Sunday
SAME_KIND = {False: {1, 2, 3, 4, 5}, True: {6, 7}}
SPIKE_USD = Decimal("90")
JUDGED_DAYS = 7  # complete days looked back on, besides today


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _row(moment: datetime, provider: str, model: str, feature: str, cost: Decimal) -> UsageRow:
    return UsageRow(moment, provider, model, feature, "ok", "", 1_000, 100, 0, 0, 500.0, cost)


def planted_rows(now: datetime) -> list[UsageRow]:
    today = now.date()
    today_moment = midnight(today) + (now - midnight(today)) / 2
    rows = [
        _row(today_moment, "openai", "gpt-4o", "classify", Decimal("3")),
        _row(today_moment, "anthropic", "claude-sonnet-4", "chat", Decimal("4")),
    ]
    for back in range(1, HISTORY_DAYS + 1):
        noon = midnight(today - timedelta(days=back)) + timedelta(hours=12)
        gpt = SPIKE_USD if back == 1 else Decimal(10 + back % 5)
        rows.append(_row(noon, "openai", "gpt-4o", "classify", gpt))
        rows.append(
            _row(noon, "anthropic", "claude-sonnet-4", "chat", Decimal(20 + 2 * (back % 3)))
        )
        if back <= 5:
            rows.append(
                _row(noon, "openai", "gpt-4.1", "extract", Decimal(500 if back == 1 else 1))
            )
    return rows


def planted_csv(now: datetime) -> bytes:
    return usage_csv(planted_rows(now))


async def plant_over_api(client: httpx.AsyncClient, now: datetime) -> None:
    """Through the API: a $0.01 daily budget (its threshold alert) and the planted usage."""
    budget = await client.post(
        "/api/budgets", json={"name": "tiny", "amount_usd": 0.01, "period": "day"}
    )
    assert budget.status_code == 201, budget.text
    uploaded = await client.post(
        "/api/usage/uploads", files={"file": ("usage.csv", planted_csv(now), "text/csv")}
    )
    assert uploaded.status_code == 200, uploaded.text


def daily_spend(rows: list[UsageRow], dimension: str) -> dict[str, dict[date, Decimal]]:
    series: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        series[getattr(row, dimension)][row.timestamp.date()] += row.cost_usd
    return series


@dataclass(frozen=True)
class ExpectedAnomaly:
    dimension: str
    name: str
    day: date
    spend: Decimal
    bound: float


def _flag(daily: dict[date, Decimal], day: date, today: date) -> tuple[str, float] | None:
    before = [
        day - timedelta(days=back)
        for back in range(1, WINDOW_DAYS + 1)
        if (day - timedelta(days=back)).isoweekday() in SAME_KIND[day.isoweekday() > 5]
    ]
    if sum(d in daily for d in before) < MIN_BASELINE_SHARE * len(before):
        return None
    history = np.array([float(daily.get(d, 0)) for d in before])
    center = float(np.median(history))
    spread = float(MAD_SCALE) * float(np.median(np.abs(history - center)))
    allowance = max(float(K) * spread, float(MIN_DELTA_USD), float(MIN_DELTA_SHARE) * center)
    delta = float(daily.get(day, 0)) - center
    if abs(delta) <= allowance or (day == today and delta < 0):
        return None
    return ("high", center + allowance) if delta > 0 else ("low", max(center - allowance, 0.0))


def expected_anomalies(rows: list[UsageRow], now: datetime) -> list[ExpectedAnomaly]:
    today = now.date()
    found = []
    for dimension in ("model", "feature"):
        for name, daily in daily_spend(rows, dimension).items():
            for back in range(JUDGED_DAYS, -1, -1):
                day = today - timedelta(days=back)
                flag = _flag(daily, day, today)
                previous = _flag(daily, day - timedelta(days=1), today)
                if flag and (previous is None or previous[0] != flag[0]):
                    found.append(
                        ExpectedAnomaly(dimension, name, day, daily.get(day, Decimal(0)), flag[1])
                    )
    return found


def spend_between(
    rows: list[UsageRow], start: datetime, end: datetime, *, model: str | None = None
) -> Decimal:
    return sum(
        (
            r.cost_usd
            for r in rows
            if start <= r.timestamp < end and (model is None or r.model == model)
        ),
        Decimal(0),
    )
