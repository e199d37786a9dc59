"""A budget's current period, its spend so far and its projection, and the alerts it calls for.

Spend is read from the ledger's totals over the budget's scope, leaving out the platform's own
metered calls unless the scope names their feature. The projection is a straight-line burn
rate: the spend so far divided by the time elapsed in the period, times the period's length
(elapsed counts at least one hour, so a period's first minutes do not project wildly). Its
overrun alert waits until a tenth of the period has passed, for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from apex.analytics.filters import OWN_CALLS_FEATURE, UsageFilter
from apex.analytics.ledger import Ledger
from apex.analytics.results import UsagePeriod
from apex.money import format_usd
from apex.monitoring.causes import cause_key
from apex.monitoring.money import from_micros, to_micros
from apex.store.models import Budget
from apex.store.repositories.alerts import AlertDraft

PERIODS = ("day", "month")
STATES = ("ok", "warning", "exceeded")
MIN_ELAPSED = timedelta(hours=1)
PROJECTION_ALERT_AFTER = Decimal("0.1")


def period_window(period: str, now: datetime) -> UsagePeriod:
    """The calendar day or month (UTC) that holds `now`."""
    now = now.astimezone(UTC)
    if period == "day":
        start = datetime(now.year, now.month, now.day, tzinfo=UTC)
        return UsagePeriod(start=start, end=start + timedelta(days=1))
    if period == "month":
        start = datetime(now.year, now.month, 1, tzinfo=UTC)
        end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
        return UsagePeriod(start=start, end=end)
    raise ValueError(f"unknown budget period {period!r}")


def scope_filter(scope: dict[str, Any]) -> UsageFilter:
    """The ledger rows a scope covers ({models?, providers?, features?}; empty covers all)."""
    features = tuple(scope.get("features") or ())
    return UsageFilter(
        models=tuple(scope.get("models") or ()),
        providers=tuple(scope.get("providers") or ()),
        features=features,
        exclude_features=() if OWN_CALLS_FEATURE in features else (OWN_CALLS_FEATURE,),
    )


def project(spent: Decimal, window: UsagePeriod, now: datetime) -> Decimal:
    """The spend the period ends at if it goes on at the rate it has gone so far."""
    elapsed = max(min(now - window.start, window.end - window.start), MIN_ELAPSED)
    length = window.end - window.start
    return spent * Decimal(length.total_seconds()) / Decimal(elapsed.total_seconds())


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    window: UsagePeriod
    spent: Decimal
    projected: Decimal
    state: str
    elapsed_share: Decimal


def classify(amount: Decimal, thresholds_pct: list[int], spent: Decimal, projected: Decimal) -> str:
    """exceeded at the amount; warning once a threshold below 100% is reached or the
    projection runs over; ok otherwise."""
    if spent >= amount:
        return "exceeded"
    warn_at = [pct for pct in thresholds_pct if pct < 100]
    if projected > amount or (warn_at and spent * 100 >= amount * min(warn_at)):
        return "warning"
    return "ok"


async def budget_status(
    ledger: Ledger, user_id: str, budget: Budget, now: datetime
) -> BudgetStatus:
    window = period_window(budget.period, now)
    totals = await ledger.totals(user_id, window, where=scope_filter(budget.scope))
    spent = totals.cost_usd
    projected = max(project(spent, window, now), spent)
    amount = from_micros(budget.amount_micros)
    share = Decimal((now - window.start).total_seconds()) / Decimal(
        (window.end - window.start).total_seconds()
    )
    return BudgetStatus(
        window=window,
        spent=spent,
        projected=projected,
        state=classify(amount, budget.thresholds_pct, spent, projected),
        elapsed_share=share,
    )


def budget_alerts(budget: Budget, status: BudgetStatus) -> list[AlertDraft]:
    """At most one threshold alert (the highest threshold reached: a large upload that crosses
    50, 80 and 100% at once says so once) and one projected overrun, per period."""
    amount = from_micros(budget.amount_micros)
    period = status.window.start.date().isoformat()
    label = "today" if budget.period == "day" else "this month"
    drafts: list[AlertDraft] = []
    reached = [pct for pct in budget.thresholds_pct if status.spent * 100 >= amount * pct]
    if reached:
        top = max(reached)
        drafts.append(
            AlertDraft(
                kind="budget_threshold",
                budget_id=budget.id,
                scope=budget.scope,
                cause_key=cause_key("budget_threshold", budget.id, str(top), period),
                message=(
                    f"Budget \u201c{budget.name}\u201d reached {top}%: "
                    f"{format_usd(float(status.spent))} of {format_usd(float(amount))} spent {label}."
                ),
                value_micros=to_micros(status.spent),
                threshold_micros=to_micros(amount * top / 100),
            )
        )
    if (
        status.spent < amount
        and status.projected > amount
        and status.elapsed_share >= PROJECTION_ALERT_AFTER
    ):
        drafts.append(
            AlertDraft(
                kind="budget_projected",
                budget_id=budget.id,
                scope=budget.scope,
                cause_key=cause_key("budget_projected", budget.id, period),
                message=(
                    f"Budget \u201c{budget.name}\u201d is on course to end the "
                    f"{budget.period} at {format_usd(float(status.projected))}, over its "
                    f"{format_usd(float(amount))}."
                ),
                value_micros=to_micros(status.projected),
                threshold_micros=budget.amount_micros,
            )
        )
    return drafts
