"""Webhooks (PROTOCOL section 6): where the caller's alerts are POSTed, signed with its secret.

The secret is never shown again after creation; each delivery attempt is listed under its
webhook. Only http(s) URLs are accepted, and only ones that reach public addresses unless the
deployment allows its private networks (monitoring/webhooks.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, StringConstraints

from apex.api.deps import CurrentPrincipal
from apex.monitoring.service import Monitoring
from apex.monitoring.webhooks import MAX_URL_CHARS, allowed_url
from apex.store.models import Webhook, WebhookDelivery
from apex.timestamps import format_timestamp

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


class WebhookCreate(BaseModel):
    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_CHARS)]
    secret: Annotated[str, StringConstraints(min_length=8, max_length=256)]


def _monitoring(request: Request) -> Monitoring:
    monitoring: Monitoring = request.app.state.monitoring
    return monitoring


def _view(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "url": webhook.url,
        "created_at": format_timestamp(webhook.created_at),
    }


def _delivery_view(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "alert_id": delivery.alert_id,
        "attempt": delivery.attempt,
        "status_code": delivery.status_code,
        "error": delivery.error,
        "delivered": delivery.delivered,
        "created_at": format_timestamp(delivery.created_at),
    }


@router.post("", status_code=201)
async def create_webhook(
    request: Request, principal: CurrentPrincipal, body: WebhookCreate
) -> dict[str, Any]:
    monitoring = _monitoring(request)
    url = await allowed_url(body.url, allow_private=monitoring.sender.allow_private)
    webhook = await monitoring.webhooks.create(principal.user_id, url=url, secret=body.secret)
    return _view(webhook)


@router.get("")
async def list_webhooks(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    return {
        "items": [_view(w) for w in await _monitoring(request).webhooks.list(principal.user_id)]
    }


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(
    request: Request, principal: CurrentPrincipal, webhook_id: str
) -> Response:
    await _monitoring(request).webhooks.delete(principal.user_id, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(
    request: Request, principal: CurrentPrincipal, webhook_id: str
) -> dict[str, Any]:
    deliveries = await _monitoring(request).webhooks.deliveries(principal.user_id, webhook_id)
    return {"items": [_delivery_view(d) for d in deliveries]}
