"""FastAPI dependencies: the one way a route learns who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from apex.auth.principal import Principal
from apex.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Bearer token from the Authorization header only: never from a query parameter."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(
            "Sign in first: send `Authorization: Bearer <access token>`.", code="missing_token"
        )
    principal: Principal = await request.app.state.auth.authenticate(credentials.credentials)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
