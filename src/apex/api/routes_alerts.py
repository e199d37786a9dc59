"""Alerts (PROTOCOL section 6): the caller's own, newest first; marking one read is idempotent."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from apex.api.deps import CurrentPrincipal
from apex.monitoring.alerts import alert_view
from apex.monitoring.service import Monitoring

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


def _monitoring(request: Request) -> Monitoring:
    monitoring: Monitoring = request.app.state.monitoring
    return monitoring


@router.get("")
async def list_alerts(
    request: Request,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """Besides the page, `unread_count`: what the bell of the web app shows."""
    alerts = _monitoring(request).alerts
    page = await alerts.list(principal.user_id, limit=limit, cursor=cursor)
    return {
        "items": [alert_view(a) for a in page.items],
        "next_cursor": page.next_cursor,
        "unread_count": await alerts.unread_count(principal.user_id),
    }


@router.post("/{alert_id}/read", status_code=204)
async def read_alert(request: Request, principal: CurrentPrincipal, alert_id: str) -> Response:
    await _monitoring(request).alerts.mark_read(principal.user_id, alert_id)
    return Response(status_code=204)
