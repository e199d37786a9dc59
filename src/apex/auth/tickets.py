"""Single-use, short-lived secrets: WebSocket tickets and pending OIDC sign-ins.

The secret is handed out once; only its SHA-256 is stored, so a copy of the store (or of Redis)
holds nothing that can be redeemed. Redeeming removes it atomically: exactly one caller wins.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import TYPE_CHECKING, Protocol

from apex.shared_redis.errors import redis_required

if TYPE_CHECKING:
    import redis.asyncio as aioredis

MAX_TICKET_CHARS = 128
PRUNE_EVERY_S = 60.0
Payload = dict[str, str]


def new_ticket() -> str:
    return secrets.token_urlsafe(32)


def ticket_key(kind: str, ticket: str) -> str:
    return f"{kind}:{hashlib.sha256(ticket.encode('utf-8', 'surrogatepass')).hexdigest()}"


class TicketStore(Protocol):
    async def issue(self, kind: str, payload: Payload, ttl_s: int) -> str:
        """A new secret that redeems to `payload` once, within `ttl_s` seconds, for `kind` only."""

    async def redeem(self, kind: str, ticket: str) -> Payload | None:
        """The payload, or None when the ticket is unknown, expired, used, or of another kind."""

    async def close(self) -> None: ...


class LocalTicketStore:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Payload]] = {}
        self._next_prune = time.monotonic() + PRUNE_EVERY_S

    async def issue(self, kind: str, payload: Payload, ttl_s: int) -> str:
        now = time.monotonic()
        if now >= self._next_prune:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            self._next_prune = now + PRUNE_EVERY_S
        ticket = new_ticket()
        self._entries[ticket_key(kind, ticket)] = (now + ttl_s, dict(payload))
        return ticket

    async def redeem(self, kind: str, ticket: str) -> Payload | None:
        if len(ticket) > MAX_TICKET_CHARS:
            return None
        entry = self._entries.pop(ticket_key(kind, ticket), None)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    async def close(self) -> None:
        self._entries.clear()


class RedisTicketStore:
    """SET with an expiry, then GETDEL: expiry and single use enforced by Redis for every process."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = f"{prefix}:auth:ticket:"

    async def issue(self, kind: str, payload: Payload, ttl_s: int) -> str:
        ticket = new_ticket()
        with redis_required("Issuing a ticket"):
            await self._redis.set(
                self._prefix + ticket_key(kind, ticket), json.dumps(payload), ex=ttl_s
            )
        return ticket

    async def redeem(self, kind: str, ticket: str) -> Payload | None:
        if len(ticket) > MAX_TICKET_CHARS:
            return None
        with redis_required("Redeeming a ticket"):
            stored = await self._redis.getdel(self._prefix + ticket_key(kind, ticket))
        if stored is None:
            return None
        payload: Payload = json.loads(stored)
        return payload

    async def close(self) -> None:
        return None
