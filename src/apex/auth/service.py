"""The one entry point the API uses to turn a credential into a Principal, and to end a session."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from apex.auth.principal import Principal
from apex.auth.refresh import RefreshTokens
from apex.auth.revocation import RevocationList
from apex.auth.tickets import TicketStore
from apex.auth.tokens import AccessTokenService
from apex.errors import Unauthorized

WS_TICKET_KIND = "ws"
SESSION_REVOCATION_MARGIN_S = 60.0


@dataclass(frozen=True, slots=True)
class IssuedTicket:
    ticket: str
    expires_in: int


def _revoked() -> Unauthorized:
    return Unauthorized("This access token has been revoked; sign in again.", code="token_revoked")


def _invalid_ticket() -> Unauthorized:
    return Unauthorized(
        "The WebSocket ticket is invalid, expired or already used.", code="invalid_ticket"
    )


class AuthService:
    """Verification is local: signature and claims, then the in-memory denylist. No I/O per request."""

    def __init__(
        self,
        access_tokens: AccessTokenService,
        *,
        revocations: RevocationList,
        tickets: TicketStore,
        refresh_tokens: RefreshTokens,
        ws_ticket_ttl_s: int,
    ) -> None:
        self.access_tokens = access_tokens
        self.revocations = revocations
        self.tickets = tickets
        self.refresh_tokens = refresh_tokens
        self.ws_ticket_ttl_s = ws_ticket_ttl_s

    async def authenticate(self, token: str) -> Principal:
        """A bearer access token (header or WebSocket subprotocol) to the caller's identity."""
        principal = self.access_tokens.verify(token)
        if self.is_revoked(principal):
            raise _revoked()
        return principal

    def is_revoked(self, principal: Principal) -> bool:
        """For holders of a Principal that outlives a request (a WebSocket): has it been revoked
        since? The token itself, its sign-in, or its whole account (deleted)."""
        revoked = self.revocations.is_revoked
        return (
            revoked(principal.token_id)
            or revoked(principal.user_id)
            or (principal.session_id is not None and revoked(principal.session_id))
        )

    async def issue_ws_ticket(self, principal: Principal) -> IssuedTicket:
        payload = {
            "user_id": principal.user_id,
            "token_id": principal.token_id,
            "expires_at": str(principal.expires_at.timestamp()),
            "session_id": principal.session_id or "",
        }
        ticket = await self.tickets.issue(WS_TICKET_KIND, payload, self.ws_ticket_ttl_s)
        return IssuedTicket(ticket=ticket, expires_in=self.ws_ticket_ttl_s)

    async def redeem_ws_ticket(self, ticket: str) -> Principal:
        """A single-use WebSocket ticket to the identity it was issued for."""
        payload = await self.tickets.redeem(WS_TICKET_KIND, ticket)
        if payload is None:
            raise _invalid_ticket()
        principal = Principal(
            user_id=payload["user_id"],
            token_id=payload["token_id"],
            expires_at=datetime.fromtimestamp(float(payload["expires_at"]), UTC),
            session_id=payload["session_id"] or None,
        )
        if self.is_revoked(principal):
            raise _revoked()
        if principal.expires_at.timestamp() <= time.time():
            raise Unauthorized(
                "The access token behind this ticket has expired.", code="token_expired"
            )
        return principal

    async def logout(self, principal: Principal) -> None:
        """This access token at once, and the sign-in it belongs to (its refresh family)."""
        if principal.session_id is not None:
            await self.revoke_session(principal.session_id, "logout", also=[principal.token_id])
        else:
            await self.revocations.revoke([principal.token_id], principal.expires_at.timestamp())

    async def revoke_account(self, user_id: str) -> None:
        """Every token of the account, on every process, at once: it has been deleted. No new
        token can be minted for it, so one access-token lifetime (and a margin for a sign-in
        racing this call) is how long the account id must stay on the denylist."""
        until = time.time() + self.access_tokens.ttl_s + SESSION_REVOCATION_MARGIN_S
        await self.revocations.revoke([user_id], until)

    async def revoke_sessions(self, session_ids: list[str], reason: str) -> None:
        """End several sign-ins at once (an account being disabled): one denylist write."""
        for session_id in session_ids:
            await self.refresh_tokens.revoke_family(session_id, reason)
        if session_ids:
            until = time.time() + self.access_tokens.ttl_s + SESSION_REVOCATION_MARGIN_S
            await self.revocations.revoke(session_ids, until)

    async def revoke_session(
        self, session_id: str, reason: str, also: list[str] | None = None
    ) -> None:
        """End a sign-in everywhere: no more refreshes, and every access token it issued is denied.

        Tokens of the session live at most one access-token lifetime from now (no new one can be
        minted once the family is revoked), so that, plus a margin for a refresh racing this very
        call, is how long the session id must stay on the denylist.
        """
        await self.refresh_tokens.revoke_family(session_id, reason)
        until = time.time() + self.access_tokens.ttl_s + SESSION_REVOCATION_MARGIN_S
        await self.revocations.revoke([session_id, *(also or [])], until)
