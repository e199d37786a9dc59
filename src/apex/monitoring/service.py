"""Budgets and alerts as one service of the server: built from Settings, started and stopped
with it. The API reaches its repositories and evaluator through it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from apex.analytics.ledger import SqlLedger
from apex.config import Settings
from apex.monitoring.alerts import AlertEvaluator
from apex.monitoring.scheduler import AlertSchedule, AlertTriggers
from apex.monitoring.webhooks import WebhookSender
from apex.realtime.notices import Deliver, Notices, open_notices
from apex.store.database import Database
from apex.store.repositories.alerts import AlertRepository
from apex.store.repositories.budgets import BudgetRepository
from apex.store.repositories.owed_deliveries import OwedDeliveryRepository
from apex.store.repositories.webhooks import WebhookRepository

# users with recent usage the schedule visits besides those with a budget
SCHEDULED_TENANTS = 1_000


@dataclass
class Monitoring:
    budgets: BudgetRepository
    alerts: AlertRepository
    webhooks: WebhookRepository
    notices: Notices
    sender: WebhookSender
    evaluator: AlertEvaluator
    triggers: AlertTriggers
    schedule: AlertSchedule

    async def start(self, deliver: Deliver) -> None:
        await self.notices.start(deliver)
        self.triggers.bind(asyncio.get_running_loop())
        await self.schedule.start()

    async def close(self) -> None:
        await self.schedule.close()
        await self.triggers.close()
        await self.sender.close()
        await self.notices.close()


def open_monitoring(settings: Settings, db: Database, ledger: SqlLedger) -> Monitoring:
    budgets, alerts, webhooks = BudgetRepository(db), AlertRepository(db), WebhookRepository(db)
    notices = open_notices(settings.redis_url, prefix=settings.redis_key_prefix)
    sender = WebhookSender(
        OwedDeliveryRepository(db),
        max_attempts=settings.webhook_max_attempts,
        backoff_s=settings.webhook_backoff_s,
        timeout_s=settings.webhook_timeout_s,
        allow_private=settings.webhooks_allow_private_networks,
    )
    evaluator = AlertEvaluator(
        ledger=ledger, budgets=budgets, alerts=alerts, notices=notices, webhooks=sender
    )

    async def users() -> list[str]:
        recent = await asyncio.to_thread(ledger.recent_tenants, SCHEDULED_TENANTS)
        return sorted(set(await budgets.owners()) | set(recent))

    schedule = AlertSchedule(
        evaluator,
        users,
        every_s=settings.alerts_every_s,
        redis_url=settings.redis_url,
        prefix=settings.redis_key_prefix,
    )
    return Monitoring(
        budgets=budgets,
        alerts=alerts,
        webhooks=webhooks,
        notices=notices,
        sender=sender,
        evaluator=evaluator,
        triggers=AlertTriggers(evaluator),
        schedule=schedule,
    )
