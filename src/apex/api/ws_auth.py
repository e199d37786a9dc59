"""WebSocket handshake authentication (PROTOCOL.md section 2).

Tried in order: subprotocol `bearer.<token>` (with `apex.v1` selected), `Authorization: Bearer`,
`?ticket=`. The first credential present decides. A token in any other query parameter is
refused (URLs end up in logs). Failure closes with 1008 before any other frame: the handshake is
accepted first so the client sees the close code rather than a bare HTTP 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from fastapi import WebSocket

from apex.auth.principal import Principal
from apex.auth.service import AuthService
from apex.config.logging import get_logger
from apex.errors import ApexError
from apex.tasks import in_background

log = get_logger(__name__)

SUBPROTOCOL = "apex.v1"
BEARER_SUBPROTOCOL_PREFIX = "bearer."
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
TOKEN_REVOKED = "token revoked"
_TOKEN_QUERY_NAMES = frozenset(
    {"token", "access_token", "jwt", "auth", "authorization", "bearer", "id_token"}
)


def _credential(websocket: WebSocket) -> tuple[str, str] | None:
    """("token" | "ticket", value) from the first place that carries one."""
    for offered in websocket.scope.get("subprotocols") or ():
        if offered.startswith(BEARER_SUBPROTOCOL_PREFIX):
            return "token", offered.removeprefix(BEARER_SUBPROTOCOL_PREFIX)
    header = websocket.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        return "token", token.strip() if scheme.lower() == "bearer" else ""
    ticket = websocket.query_params.get("ticket")
    if ticket is not None:
        return "ticket", ticket
    return None


async def authenticate_handshake(websocket: WebSocket) -> Principal | None:
    """Accept the handshake and return the caller, or close 1008 and return None."""
    offered = websocket.scope.get("subprotocols") or ()
    auth = websocket.app.state.auth
    principal: Principal | None = None
    close_code, reason = POLICY_VIOLATION, "authentication required"
    if any(name.lower() in _TOKEN_QUERY_NAMES for name in websocket.query_params):
        reason = "tokens are not accepted in the URL"
    else:
        credential = _credential(websocket)
        try:
            if credential is not None and credential[1]:
                kind, value = credential
                principal = await (
                    auth.authenticate(value) if kind == "token" else auth.redeem_ws_ticket(value)
                )
            elif credential is not None:
                reason = "empty credential"
        except ApexError as exc:
            reason = exc.code
        except Exception as exc:
            log.exception("ws_auth_failed", error=repr(exc))
            close_code, reason = INTERNAL_ERROR, "authentication unavailable"
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    if principal is None:
        await websocket.close(close_code, reason)
        return None
    return principal


class AuthenticatedSocket(Protocol):
    principal: Principal

    async def shut(self, code: int, reason: str) -> None: ...


def close_revoked(sockets: Iterable[AuthenticatedSocket], auth: AuthService) -> None:
    """Close with 1008 every socket whose token, sign-in or account is now revoked: a revoked
    credential stops working on an open connection as at once as on the next request. Runs
    whenever this process learns of a revocation (its own, or another process's)."""
    for socket in sockets:
        if auth.is_revoked(socket.principal):
            in_background(socket.shut(POLICY_VIOLATION, TOKEN_REVOKED))
