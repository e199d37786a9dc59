"""Deliver alerts to the owner's webhooks: signed, retried with exponential backoff, recorded.

Each alert is POSTed as JSON with `X-Apex-Signature: sha256=<hex HMAC-SHA256 of the body with
the webhook's secret>`; a receiver recomputes it over the exact bytes it got. A 2xx answer is
delivered; anything else (another status, a timeout, a refused connection) is retried after
`backoff_s`, then twice that, and so on, up to `max_attempts` in all. Every attempt is
recorded for `GET /api/webhooks/{id}/deliveries`. Redirects are not followed: the URL the
owner registered is the only one that receives their alerts.

A webhook is a request the server makes on a user's behalf, so by default it may not reach the
server's own networks: a URL whose host is, or resolves to, a loopback, private, link-local or
otherwise non-public address is refused when the webhook is created (when the name resolves
then) and never called (checked again before every attempt, as DNS answers change).
`APEX_WEBHOOKS_ALLOW_PRIVATE_NETWORKS` lifts this for deployments whose receivers are internal.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx2
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from apex.config.logging import get_logger
from apex.errors import BadRequest
from apex.store.repositories.webhooks import WebhookRepository

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Apex-Signature"
MAX_URL_CHARS = 2048


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def checked_url(url: str) -> str:
    """An absolute http(s) URL with a host, or 400: no other scheme is ever called."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(url) > MAX_URL_CHARS
        or any(ch.isspace() for ch in url)
        or parts.username is not None
        or (port is not None and port == 0)
    ):
        raise BadRequest(
            "The webhook URL must be an absolute http:// or https:// URL without credentials.",
            code="invalid_webhook_url",
        )
    return url


def _not_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def private_address(url: str) -> str | None:
    """The first loopback, private or otherwise non-public address the URL's host is or
    resolves to; None when all are public, or when the name does not resolve (nothing can be
    reached through it then)."""
    host = (urlsplit(url).hostname or "").rstrip(".")
    try:
        return host if _not_public(host) else None
    except ValueError:
        pass  # a name, not an address literal
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    return next((str(info[4][0]) for info in answers if _not_public(str(info[4][0]))), None)


def private_refusal(url: str, address: str) -> BadRequest:
    host = urlsplit(url).hostname
    reached = address if address == host else f"{host} ({address})"
    return BadRequest(
        f"The webhook URL reaches {reached}, which is not a public address; this "
        "server sends webhooks to public addresses only.",
        code="invalid_webhook_url",
        details={"address": address},
    )


async def allowed_url(url: str, *, allow_private: bool) -> str:
    """`checked_url`, and a 400 for a URL that reaches a non-public address unless allowed."""
    url = checked_url(url)
    if not allow_private and (address := await private_address(url)) is not None:
        raise private_refusal(url, address)
    return url


class WebhookSender:
    def __init__(
        self,
        webhooks: WebhookRepository,
        *,
        max_attempts: int,
        backoff_s: float,
        timeout_s: float,
        allow_private: bool = False,
    ) -> None:
        self.webhooks = webhooks
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.allow_private = allow_private
        self._client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(timeout_s), follow_redirects=False, trust_env=False
        )
        self._tasks: set[asyncio.Task[None]] = set()

    async def deliver(self, user_id: str, alert_id: str, alert: dict[str, Any]) -> None:
        """Start delivering one alert to each of the owner's webhooks (in the background)."""
        body = json.dumps(alert, separators=(",", ":")).encode()
        for webhook in await self.webhooks.list(user_id):
            task = asyncio.create_task(
                self._send(webhook.id, webhook.url, webhook.secret, alert_id, body),
                name="apex-webhook",
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(
        self, webhook_id: str, url: str, secret: str, alert_id: str, body: bytes
    ) -> None:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body),
            "X-Apex-Alert": alert_id,
        }
        for attempt in range(1, self.max_attempts + 1):
            status, error = None, None
            address = None if self.allow_private else await private_address(url)
            if address is not None:
                error = f"not sent: {private_refusal(url, address).message}"
            else:
                try:
                    response = await self._client.post(url, content=body, headers=headers)
                    status = response.status_code
                except httpx2.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
            delivered = status is not None and 200 <= status < 300
            try:
                await self.webhooks.record(
                    webhook_id=webhook_id,
                    alert_id=alert_id,
                    attempt=attempt,
                    status_code=status,
                    error=error,
                    delivered=delivered,
                )
            except IntegrityError:  # the webhook (or its owner) was deleted meanwhile
                return
            except SQLAlchemyError as exc:  # the attempt happened; only its record is lost
                log.warning("webhook_attempt_not_recorded", webhook_id=webhook_id, error=repr(exc))
            if delivered or address is not None:  # a refused address is not retried
                return
            if attempt < self.max_attempts:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        log.warning("webhook_gave_up", webhook_id=webhook_id, alert_id=alert_id)

    async def wait_idle(self, timeout_s: float) -> None:
        """Until every delivery under way has finished (or `timeout_s` has passed)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._client.aclose()
