"""`/api/auth`: accounts, token pairs, logout, OIDC redirects and WebSocket tickets. Thin: the
work happens in apex.auth; this module maps HTTP to it and back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import Message

from apex.api.deps import CurrentPrincipal
from apex.auth.accounts import MAX_NAME_CHARS, AccountService, SignedIn
from apex.auth.emails import MAX_EMAIL_CHARS
from apex.auth.oidc import PENDING_LOGIN_TTL_S, OidcLogin
from apex.auth.passwords import MAX_PASSWORD_CHARS
from apex.auth.service import AuthService
from apex.errors import BadRequest, Unauthorized
from apex.execution.manager import RunManager
from apex.execution.state import LIVE_STATES
from apex.store.models import User
from apex.timestamps import format_timestamp

MAX_BODY_BYTES = 16 * 1_024
OIDC_STATE_COOKIE = "apex_oidc_state"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
RUN_STOP_WAIT_S = 5.0


class BoundedBodyRoute(APIRoute):
    """Refuses auth bodies over 16 KiB with 413 before reading them whole, declared or streamed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise _too_large()
            received = 0

            async def receive() -> Message:
                nonlocal received
                message = await request.receive()
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise _too_large()
                return message

            return await handler(Request(request.scope, receive))

        return bounded


def _too_large() -> HTTPException:
    return HTTPException(413, f"Auth request bodies are limited to {MAX_BODY_BYTES} bytes.")


router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=BoundedBodyRoute)


class RegisterBody(BaseModel):
    email: str = Field(max_length=MAX_EMAIL_CHARS)
    password: str = Field(max_length=MAX_PASSWORD_CHARS)
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)


class LoginBody(BaseModel):
    email: str = Field(max_length=MAX_EMAIL_CHARS)
    password: str = Field(max_length=MAX_PASSWORD_CHARS)


class RefreshBody(BaseModel):
    refresh_token: str = Field(max_length=512)


class DevLoginBody(BaseModel):
    email: str | None = Field(default=None, max_length=MAX_EMAIL_CHARS)


class UserOut(BaseModel):
    id: str
    email: str
    name: str | None
    created_at: str


class TokenPairOut(BaseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class ProviderOut(BaseModel):
    name: str
    label: str
    login_url: str


class ProvidersOut(BaseModel):
    providers: list[ProviderOut]
    dev_login: bool


PROVIDER_LABELS = {"google": "Google"}


class TicketOut(BaseModel):
    ticket: str
    expires_in: int


def _user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id, email=user.email, name=user.name, created_at=format_timestamp(user.created_at)
    )


def _pair(signed_in: SignedIn, response: Response) -> TokenPairOut:
    response.headers.update(NO_STORE)
    return TokenPairOut(
        user=_user_out(signed_in.user),
        access_token=signed_in.access.token,
        refresh_token=signed_in.refresh_token,
        expires_in=signed_in.access.expires_in,
    )


def _client_ip(request: Request) -> str:
    """The peer of this connection. X-Forwarded-For counts only when the server was told to
    trust a proxy (APEX_FORWARDED_ALLOW_IPS), and then the server itself has rewritten the peer."""
    return request.client.host if request.client else "unknown"


def _accounts(request: Request) -> AccountService:
    accounts: AccountService = request.app.state.accounts
    return accounts


def _auth(request: Request) -> AuthService:
    auth: AuthService = request.app.state.auth
    return auth


def _oidc(request: Request) -> OidcLogin:
    oidc: OidcLogin = request.app.state.oidc
    return oidc


@router.post("/register", status_code=201, response_model=TokenPairOut)
async def register(body: RegisterBody, request: Request, response: Response) -> TokenPairOut:
    signed_in = await _accounts(request).register(
        email=body.email, password=body.password, name=body.name, client_ip=_client_ip(request)
    )
    return _pair(signed_in, response)


@router.post("/login", response_model=TokenPairOut)
async def login(body: LoginBody, request: Request, response: Response) -> TokenPairOut:
    signed_in = await _accounts(request).login(
        email=body.email, password=body.password, client_ip=_client_ip(request)
    )
    return _pair(signed_in, response)


@router.post("/refresh", response_model=TokenPairOut)
async def refresh(body: RefreshBody, request: Request, response: Response) -> TokenPairOut:
    signed_in = await _accounts(request).refresh(
        refresh_token=body.refresh_token, client_ip=_client_ip(request)
    )
    return _pair(signed_in, response)


@router.post("/logout", status_code=204, response_class=Response)
async def logout(principal: CurrentPrincipal, request: Request) -> Response:
    await _auth(request).logout(principal)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
async def me(principal: CurrentPrincipal, request: Request) -> UserOut:
    return _user_out(await _accounts(request).get_user(principal.user_id))


async def _stop_live_runs(accounts: AccountService, manager: RunManager, user_id: str) -> None:
    """Cancel the account's live runs, wherever they execute, and give them a moment to end
    (a run that ends after its rows are gone could not store its end)."""
    live_states = [state.value for state in LIVE_STATES]
    deadline = asyncio.get_running_loop().time() + RUN_STOP_WAIT_S
    live = await accounts.users.run_ids_in(user_id, live_states)
    for run_id in live:
        await manager.cancel(user_id, run_id)
    while live and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        live = await accounts.users.run_ids_in(user_id, live_states)


@router.delete("/me", status_code=204, response_class=Response)
async def delete_me(principal: CurrentPrincipal, request: Request) -> Response:
    """Erase the account: its live runs are stopped (so none records usage afterwards), then
    its usage ledger is erased (an outage there leaves the account whole and the call
    retryable), then the account with its threads, runs and sign-ins, and last its tokens and
    open sockets stop working, everywhere."""
    accounts, manager = _accounts(request), request.app.state.run_manager
    await _stop_live_runs(accounts, manager, principal.user_id)
    ledger = request.app.state.ledger
    await asyncio.to_thread(ledger.delete_usage, principal.user_id, whole_account=True)
    await accounts.delete_account(principal.user_id)
    return Response(status_code=204, headers=NO_STORE)


@router.get("/providers", response_model=ProvidersOut)
async def providers(request: Request) -> ProvidersOut:
    """What the sign-in page may offer: configured OIDC providers and, in development only,
    the one-click development login. Needs no token: it is shown before anyone signs in."""
    names = sorted(_oidc(request).providers)
    return ProvidersOut(
        providers=[
            ProviderOut(
                name=name,
                label=PROVIDER_LABELS.get(name, name),
                login_url=f"/api/auth/oidc/{name}/login",
            )
            for name in names
        ],
        dev_login=request.app.state.settings.is_development,
    )


@router.post("/dev-login", response_model=TokenPairOut)
async def dev_login(
    request: Request, response: Response, body: DevLoginBody | None = None
) -> TokenPairOut:
    signed_in = await _accounts(request).dev_login(body.email if body else None)
    return _pair(signed_in, response)


@router.post("/ws-ticket", response_model=TicketOut)
async def ws_ticket(principal: CurrentPrincipal, request: Request, response: Response) -> TicketOut:
    issued = await _auth(request).issue_ws_ticket(principal)
    response.headers.update(NO_STORE)
    return TicketOut(ticket=issued.ticket, expires_in=issued.expires_in)


@router.get("/oidc/{provider}/login", status_code=302, response_class=RedirectResponse)
async def oidc_login(provider: str, request: Request) -> RedirectResponse:
    """Redirects to the provider; a cookie binds the state to this browser (login CSRF)."""
    oidc = _oidc(request)
    redirect = await oidc.begin(provider)
    response = RedirectResponse(redirect.url, status_code=302, headers=NO_STORE)
    response.set_cookie(
        OIDC_STATE_COOKIE,
        redirect.state,
        max_age=PENDING_LOGIN_TTL_S,
        path=f"/api/auth/oidc/{provider}/",
        httponly=True,
        samesite="lax",
        secure=oidc.public_url.startswith("https://"),
    )
    return response


@router.get("/oidc/{provider}/callback", status_code=303, response_class=RedirectResponse)
async def oidc_callback(
    provider: str,
    request: Request,
    state: Annotated[str, Query(max_length=256)] = "",
    code: Annotated[str, Query(max_length=2_048)] = "",
    error: Annotated[str, Query(max_length=256)] = "",
) -> RedirectResponse:
    """On success, redirects to the web UI's `#/oidc` route with the token pair in the URL
    fragment (never sent to a server); the UI reads it and clears it from the address bar."""
    oidc = _oidc(request)
    oidc.provider(provider)
    if not state or request.cookies.get(OIDC_STATE_COOKIE) != state:
        raise BadRequest(
            "This sign-in did not start in this browser, or it expired; start again.",
            code="invalid_oidc_state",
        )
    if error or not code:
        await oidc.abandon(state)
        raise Unauthorized(
            f"The identity provider did not sign you in ({error or 'no code'}).", code="oidc_denied"
        )
    claims = await oidc.complete(provider, state=state, code=code)
    signed_in = await _accounts(request).oidc_login(claims)
    fragment = urlencode(
        {
            "access_token": signed_in.access.token,
            "refresh_token": signed_in.refresh_token,
            "token_type": "bearer",
            "expires_in": signed_in.access.expires_in,
        }
    )
    response = RedirectResponse(
        f"{oidc.public_url}/#/oidc?{fragment}", status_code=303, headers=NO_STORE
    )
    response.delete_cookie(OIDC_STATE_COOKIE, path=f"/api/auth/oidc/{provider}/")
    return response
