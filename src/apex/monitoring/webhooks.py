"""Deliver alerts to the owner's webhooks: signed, retried with exponential backoff, recorded.

Each alert is POSTed as JSON with `X-Apex-Signature: sha256=<hex HMAC-SHA256 of the body with
the webhook's secret>`; a receiver recomputes it over the exact bytes it got. A 2xx answer is
delivered; anything else (another status, a timeout, a refused connection) is retried after
`backoff_s`, then twice that, and so on, up to `max_attempts` in all. Every attempt is
recorded for `GET /api/webhooks/{id}/deliveries`. Redirects are not followed: the URL the
owner registered is the only one that receives their alerts.

What is still owed lives in the app database (`OwedDeliveryRepository`), not in this process:
the first attempt goes out at once, the process that made it waits out the backoff and sends
the next, and if it stops meanwhile, whichever process runs the alert schedule sends the
retries once they are due (`resume_due`). Each attempt is claimed in the database before it is
sent, so two processes never send the same one.

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
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx2
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from apex.config.logging import get_logger
from apex.errors import BadRequest
from apex.store.repositories.owed_deliveries import (
    ClaimedAttempt,
    Outcome,
    OwedDeliveryRepository,
    OwedKey,
)
from apex.store.types import utcnow

log = get_logger(__name__)

SIGNATURE_HEADER = "X-Apex-Signature"
MAX_URL_CHARS = 2048
# beyond an attempt's timeout, how long it stays claimed by the process that sends it: time to
# check its host and record it. A process that stops mid-attempt delays the next one this long.
CLAIM_MARGIN_S = 30.0
# due deliveries one round of the schedule resumes at most (the next round takes the rest)
RESUMED_AT_ONCE = 500


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
        owed: OwedDeliveryRepository,
        *,
        max_attempts: int,
        backoff_s: float,
        timeout_s: float,
        allow_private: bool = False,
    ) -> None:
        self.owed = owed
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        # how long an attempt stays claimed: past it, the next attempt falls due for any process
        self.claim_for = timedelta(seconds=timeout_s + CLAIM_MARGIN_S)
        self._client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(timeout_s), follow_redirects=False, trust_env=False
        )
        self._running: dict[OwedKey, asyncio.Task[None]] = {}

    async def owe_in(
        self, session: AsyncSession, user_id: str, alert: dict[str, Any]
    ) -> list[OwedKey]:
        """Owe one alert to each of the owner's webhooks, in the transaction that stores the
        alert; `send_first` once it has committed."""
        body = json.dumps(alert, separators=(",", ":")).encode()
        return await self.owed.owe_in(
            session, user_id, alert["id"], body, due_at=utcnow() + self.claim_for
        )

    def send_first(self, owed: list[OwedKey]) -> None:
        """Send the first attempts of what was just owed (in the background)."""
        for key in owed:
            self._start(key, 1)

    async def resume_due(self, now: datetime | None = None) -> int:
        """Send every owed attempt that is due and not already under way here (those a stopped
        process left, or that another process has not claimed in time); returns how many."""
        started = 0
        for due in await self.owed.due(now or utcnow(), limit=RESUMED_AT_ONCE):
            if due.key in self._running:
                continue
            if due.attempt > self.max_attempts:
                await self.owed.drop(due)
                log.warning(
                    "webhook_gave_up", webhook_id=due.key.webhook_id, alert_id=due.key.alert_id
                )
                continue
            self._start(due.key, due.attempt)
            started += 1
        return started

    def _start(self, key: OwedKey, attempt: int) -> None:
        task = asyncio.create_task(self._deliver_from(key, attempt), name="apex-webhook")
        self._running[key] = task
        task.add_done_callback(lambda _done: self._forget(key, task))

    def _forget(self, key: OwedKey, task: asyncio.Task[None]) -> None:
        if self._running.get(key) is task:
            del self._running[key]

    async def _deliver_from(self, key: OwedKey, attempt: int) -> None:
        try:
            while (wait_s := await self._attempt(key, attempt)) is not None:
                await asyncio.sleep(wait_s)
                attempt += 1
        except SQLAlchemyError as exc:  # still owed: a later round of the schedule resumes it
            log.warning("webhook_attempt_not_claimed", webhook_id=key.webhook_id, error=repr(exc))

    async def _attempt(self, key: OwedKey, attempt: int) -> float | None:
        """Claim and send attempt `attempt`, record it; the wait before the next one, or None
        when there is none (delivered, refused, out of attempts, or not ours to send)."""
        claimed = await self.owed.claim(key, attempt, until=utcnow() + self.claim_for)
        if claimed is None:
            return None
        outcome, refused = await self._send(claimed)
        wait_s = self.backoff_s * 2 ** (attempt - 1)
        last = outcome.delivered or refused or attempt >= self.max_attempts
        try:
            kept = await self.owed.settle(
                claimed, outcome, next_due=None if last else utcnow() + timedelta(seconds=wait_s)
            )
        except SQLAlchemyError as exc:
            # the attempt happened but is not recorded; the next falls due when the claim ends
            log.warning("webhook_attempt_not_recorded", webhook_id=key.webhook_id, error=repr(exc))
            return None
        if not kept:  # the webhook (or its alert) was deleted meanwhile
            return None
        if last and not (outcome.delivered or refused):
            log.warning("webhook_gave_up", webhook_id=key.webhook_id, alert_id=key.alert_id)
        return None if last else wait_s

    async def _send(self, claimed: ClaimedAttempt) -> tuple[Outcome, bool]:
        """POST the claimed attempt, unless its host now reaches a non-public address; the
        outcome, and whether it was refused that way."""
        url = claimed.url
        if not self.allow_private and (address := await private_address(url)) is not None:
            refusal = f"not sent: {private_refusal(url, address).message}"
            return Outcome(status_code=None, error=refusal, delivered=False), True
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(claimed.secret, claimed.body),
            "X-Apex-Alert": claimed.key.alert_id,
        }
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._client.post(url, content=claimed.body, headers=headers)
        except httpx2.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            return Outcome(status_code=None, error=error, delivered=False), False
        except TimeoutError:
            error = f"TimeoutError: no answer within {self.timeout_s:g} s"
            return Outcome(status_code=None, error=error, delivered=False), False
        status = response.status_code
        return Outcome(status_code=status, error=None, delivered=200 <= status < 300), False

    async def wait_idle(self, timeout_s: float) -> None:
        """Until every delivery under way here has finished (or `timeout_s` has passed)."""
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=timeout_s)

    async def close(self) -> None:
        """Stop sending; what is still owed stays owed, for the schedule of whichever process
        runs next."""
        for task in list(self._running.values()):
            task.cancel()
        for task in list(self._running.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._client.aclose()
