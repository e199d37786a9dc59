"""Evaluate a user's budgets and spend, raise the alerts found, and deliver each one raised.

Any process may evaluate any user at any time (after a commit, on the schedule): the alert
table's unique cause key lets exactly one of them raise a given alert, and only that one
delivers it, live to the owner's sockets and to the owner's webhooks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from apex.analytics.filters import OWN_CALLS_FEATURE
from apex.analytics.ledger import Ledger
from apex.analytics.results import UsagePeriod
from apex.money import format_usd
from apex.monitoring.anomalies import WINDOW_DAYS, Anomaly, anomalies
from apex.monitoring.budgets import budget_alerts, budget_status, scope_filter
from apex.monitoring.causes import cause_key
from apex.monitoring.money import micros_json, to_micros
from apex.monitoring.webhooks import WebhookSender
from apex.realtime.notices import Notices
from apex.store.models import Alert
from apex.store.repositories.alerts import AlertDraft, AlertRepository
from apex.store.repositories.budgets import BudgetRepository
from apex.store.repositories.owed_deliveries import OwedKey
from apex.timestamps import format_timestamp

# complete days looked back on: an upload of the past week's rows is still judged
RECENT_DAYS = 7
DIMENSIONS = (("model", "models"), ("feature", "features"))


def alert_view(alert: Alert) -> dict[str, Any]:
    """An alert as the API, the WebSocket frame and the webhook body show it."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "budget_id": alert.budget_id,
        "scope": alert.scope,
        "message": alert.message,
        "value_usd": micros_json(alert.value_micros),
        "threshold_usd": micros_json(alert.threshold_micros),
        "created_at": format_timestamp(alert.created_at),
        "read_at": format_timestamp(alert.read_at) if alert.read_at else None,
    }


def _anomaly_draft(dimension: str, name: str, key: str, found: Anomaly) -> AlertDraft:
    typical = format_usd(float(found.baseline.median))
    return AlertDraft(
        kind="anomaly",
        scope={key: [name]},
        cause_key=cause_key("anomaly", dimension, name, found.day.isoformat()),
        message=(
            f"Spend on {dimension} {name} was {format_usd(float(found.spend))} on "
            f"{found.day.isoformat()}, far {'above' if found.direction == 'high' else 'below'}"
            f" its usual {typical} a day."
        ),
        value_micros=to_micros(found.spend),
        threshold_micros=to_micros(found.bound),
    )


class AlertEvaluator:
    def __init__(
        self,
        *,
        ledger: Ledger,
        budgets: BudgetRepository,
        alerts: AlertRepository,
        notices: Notices,
        webhooks: WebhookSender,
    ) -> None:
        self.ledger = ledger
        self.budgets = budgets
        self.alerts = alerts
        self.notices = notices
        self.webhooks = webhooks

    async def findings(self, user_id: str, now: datetime) -> list[AlertDraft]:
        """Every alert the user's data calls for now (raised or not)."""
        drafts: list[AlertDraft] = []
        for budget in await self.budgets.list(user_id):
            drafts += budget_alerts(budget, await budget_status(self.ledger, user_id, budget, now))
        return drafts + await self.anomaly_findings(user_id, now)

    async def anomaly_findings(self, user_id: str, now: datetime) -> list[AlertDraft]:
        today = now.astimezone(UTC).date()
        first = today - timedelta(days=RECENT_DAYS + 1 + WINDOW_DAYS)
        window = UsagePeriod(
            start=datetime(first.year, first.month, first.day, tzinfo=UTC),
            end=datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1),
        )
        judged = [today - timedelta(days=back) for back in range(RECENT_DAYS, -1, -1)]
        names = await self.ledger.names(user_id)
        drafts: list[AlertDraft] = []
        for dimension, key in DIMENSIONS:
            series = sorted({getattr(n, dimension) for n in names} - {OWN_CALLS_FEATURE, ""})
            for name in series:
                days = await self.ledger.by_day(user_id, window, where=scope_filter({key: [name]}))
                daily: dict[date, Decimal] = {d.day: d.cost_usd for d in days}
                drafts += [
                    _anomaly_draft(dimension, name, key, found)
                    for found in anomalies(daily, judged, today=today)
                ]
        return drafts

    async def evaluate(self, user_id: str, now: datetime | None = None) -> list[Alert]:
        """Raise what is new and deliver it; returns the alerts this call raised."""
        drafts = await self.findings(user_id, now or datetime.now(UTC))
        views: dict[str, dict[str, Any]] = {}
        owed: dict[str, list[OwedKey]] = {}

        async def owe(session: AsyncSession, alert: Alert) -> None:
            views[alert.id] = alert_view(alert)
            owed[alert.id] = await self.webhooks.owe_in(session, user_id, views[alert.id])

        raised = await self.alerts.raise_new(user_id, drafts, with_each=owe)
        for alert in raised:
            await self.notices.publish(user_id, {"type": "alert", "alert": views[alert.id]})
            self.webhooks.send_first(owed[alert.id])
        return raised
