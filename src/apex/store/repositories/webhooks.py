"""Webhooks and the record of every attempt to deliver an alert to one (written by
`OwedDeliveryRepository.settle`)."""

from __future__ import annotations

from sqlalchemy import select

from apex.store.models import Webhook, WebhookDelivery
from apex.store.repositories.owned import OwnedRows
from apex.store.types import utcnow

MAX_LISTED_DELIVERIES = 200


class WebhookRepository(OwnedRows[Webhook]):
    model = Webhook
    noun = "webhook"
    limit = 10

    async def create(self, user_id: str, *, url: str, secret: str) -> Webhook:
        return await self._add(
            user_id, Webhook(user_id=user_id, url=url, secret=secret, created_at=utcnow())
        )

    async def deliveries(self, user_id: str, webhook_id: str) -> list[WebhookDelivery]:
        """The latest attempts to one of the owner's webhooks, newest first."""
        await self.get(user_id, webhook_id)
        async with self.db.session() as session:
            rows = await session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook_id)
                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
                .limit(MAX_LISTED_DELIVERIES)
            )
            return list(rows.all())
