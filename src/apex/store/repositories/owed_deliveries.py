"""Alerts still owed to webhooks, and the claim that lets exactly one process send each attempt.

An owed delivery is keyed by (webhook, alert) and holds the number of its next attempt. To send
attempt n a process claims it: `UPDATE … SET attempt = n + 1, due_at = <claim expiry> WHERE
attempt = n`. Two processes that race for the same attempt both issue the update; the database
applies one, the other changes no row and sends nothing. The claim's expiry is when the attempt
after it falls due should the claiming process stop before it settles: the attempt it had
claimed is then lost (never sent twice), and the next one is sent by whoever runs the schedule.
Settling records the attempt and reschedules (or drops) the row in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from apex.store.database import Database
from apex.store.models import OwedDelivery, Webhook, WebhookDelivery
from apex.store.types import utcnow

MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class OwedKey:
    webhook_id: str
    alert_id: str


@dataclass(frozen=True, slots=True)
class DueDelivery:
    key: OwedKey
    attempt: int


@dataclass(frozen=True, slots=True)
class ClaimedAttempt:
    """Attempt `attempt` of one alert to one webhook, this process's alone to send."""

    key: OwedKey
    attempt: int
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    delivered: bool


class OwedDeliveryRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def owe_in(
        session: AsyncSession, user_id: str, alert_id: str, body: bytes, *, due_at: datetime
    ) -> list[OwedKey]:
        """Attempt 1 of the alert to each of the owner's webhooks, in one statement of the
        caller's transaction (the alert's own), so a webhook added or deleted meanwhile is
        either owed the alert or not, never half."""
        now = utcnow()
        rows = await session.scalars(
            insert(OwedDelivery)
            .from_select(
                ["webhook_id", "alert_id", "body", "attempt", "due_at", "created_at"],
                select(
                    Webhook.id,
                    literal(alert_id),
                    literal(body.decode()),
                    literal(1),
                    literal(due_at, OwedDelivery.due_at.type),
                    literal(now, OwedDelivery.created_at.type),
                )
                .where(Webhook.user_id == user_id)
                .order_by(Webhook.created_at, Webhook.id),
            )
            .returning(OwedDelivery.webhook_id)
        )
        return [OwedKey(webhook_id, alert_id) for webhook_id in rows.all()]

    async def due(self, now: datetime, *, limit: int) -> list[DueDelivery]:
        """The deliveries whose next attempt is due, soonest first."""
        async with self.db.session() as session:
            rows = await session.execute(
                select(OwedDelivery.webhook_id, OwedDelivery.alert_id, OwedDelivery.attempt)
                .where(OwedDelivery.due_at <= now)
                .order_by(OwedDelivery.due_at)
                .limit(limit)
            )
            return [DueDelivery(OwedKey(hook, alert), attempt) for hook, alert, attempt in rows]

    async def claim(self, key: OwedKey, attempt: int, *, until: datetime) -> ClaimedAttempt | None:
        """Attempt `attempt`, with what sending it takes, when this call is the one that moved
        the row on; None when another process claimed it first or the row is gone."""
        async with self.db.session() as session:
            moved = await session.execute(
                update(OwedDelivery)
                .where(
                    OwedDelivery.webhook_id == key.webhook_id,
                    OwedDelivery.alert_id == key.alert_id,
                    OwedDelivery.attempt == attempt,
                )
                .values(attempt=attempt + 1, due_at=until)
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return None
            row = (
                await session.execute(
                    select(Webhook.url, Webhook.secret, OwedDelivery.body)
                    .join(Webhook, Webhook.id == OwedDelivery.webhook_id)
                    .where(
                        OwedDelivery.webhook_id == key.webhook_id,
                        OwedDelivery.alert_id == key.alert_id,
                    )
                )
            ).one()
            await session.commit()
            return ClaimedAttempt(key, attempt, row.url, row.secret, row.body.encode())

    async def settle(
        self, claimed: ClaimedAttempt, outcome: Outcome, *, next_due: datetime | None
    ) -> bool:
        """Record the attempt and, while the row is still at this claim, reschedule the next
        attempt for `next_due` (or drop the row when None); False when the webhook or the alert
        was deleted meanwhile (nothing is recorded, nothing remains owed)."""
        async with self.db.session() as session:
            try:
                await self._settle(session, claimed, outcome, next_due)
            except IntegrityError:
                await session.rollback()
                return False
            return True

    @staticmethod
    async def _settle(
        session: AsyncSession,
        claimed: ClaimedAttempt,
        outcome: Outcome,
        next_due: datetime | None,
    ) -> None:
        key = claimed.key
        still_ours = (
            OwedDelivery.webhook_id == key.webhook_id,
            OwedDelivery.alert_id == key.alert_id,
            OwedDelivery.attempt == claimed.attempt + 1,
        )
        session.add(
            WebhookDelivery(
                webhook_id=key.webhook_id,
                alert_id=key.alert_id,
                attempt=claimed.attempt,
                status_code=outcome.status_code,
                error=outcome.error[:MAX_ERROR_CHARS] if outcome.error else None,
                delivered=outcome.delivered,
                created_at=utcnow(),
            )
        )
        await session.flush()
        if next_due is None:
            await session.execute(delete(OwedDelivery).where(*still_ours))
        else:
            await session.execute(update(OwedDelivery).where(*still_ours).values(due_at=next_due))
        await session.commit()

    async def drop(self, due: DueDelivery) -> None:
        """Forget a delivery whose last attempt was claimed by a process that never settled it."""
        async with self.db.session() as session:
            await session.execute(
                delete(OwedDelivery).where(
                    OwedDelivery.webhook_id == due.key.webhook_id,
                    OwedDelivery.alert_id == due.key.alert_id,
                    OwedDelivery.attempt == due.attempt,
                )
            )
            await session.commit()
