"""The one entry point the API uses to turn a credential into a Principal."""

from __future__ import annotations

from apex.auth.principal import Principal
from apex.auth.tokens import AccessTokenService
from apex.errors import Unauthorized


class AuthService:
    def __init__(self, access_tokens: AccessTokenService) -> None:
        self.access_tokens = access_tokens

    async def authenticate(self, token: str) -> Principal:
        """A bearer access token (header or WebSocket subprotocol) to the caller's identity."""
        return self.access_tokens.verify(token)

    async def redeem_ws_ticket(self, ticket: str) -> Principal:
        """A single-use WebSocket ticket to the identity it was issued for."""
        raise Unauthorized("The WebSocket ticket is invalid or already used.", code="invalid_ticket")
