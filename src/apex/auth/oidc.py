"""OIDC sign-in: authorization-code flow with PKCE (S256), state and nonce, via Authlib.

`begin` stores the PKCE verifier and nonce under a single-use state (the ticket store, so the
callback may land on any process) and returns the provider's authorization URL. `complete`
redeems the state, exchanges the code, verifies the id_token against the provider's JWKS
(signature, issuer, audience, expiry, nonce) and cross-checks the userinfo subject.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from apex.auth.tickets import TicketStore
from apex.config import Settings
from apex.config.logging import get_logger
from apex.errors import BadRequest, NotFound, ServiceUnavailable, Unauthorized

log = get_logger("apex.auth.oidc")

GOOGLE_ISSUER = "https://accounts.google.com"
DEFAULT_SCOPE = "openid email profile"
PENDING_LOGIN_KIND = "oidc"
PENDING_LOGIN_TTL_S = 600
HTTP_TIMEOUT_S = 10.0
METADATA_TTL_S = 3_600.0
ID_TOKEN_LEEWAY_S = 60
ID_TOKEN_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


@dataclass(frozen=True, slots=True)
class OidcProvider:
    name: str
    issuer: str
    client_id: str
    client_secret: str | None
    scope: str = DEFAULT_SCOPE


@dataclass(frozen=True, slots=True)
class OidcClaims:
    """What Apex learns about the person from the provider, after every check passed."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


@dataclass(frozen=True, slots=True)
class OidcRedirect:
    url: str
    state: str


def configured_providers(settings: Settings) -> dict[str, OidcProvider]:
    """Google when its client id is set (the preset), and any issuer under `APEX_OIDC_NAME`."""
    providers: dict[str, OidcProvider] = {}
    if settings.oidc_google_client_id:
        secret = settings.oidc_google_client_secret
        providers["google"] = OidcProvider(
            name="google",
            issuer=GOOGLE_ISSUER,
            client_id=settings.oidc_google_client_id,
            client_secret=secret.get_secret_value() if secret else None,
        )
    if settings.oidc_issuer and settings.oidc_client_id:
        secret = settings.oidc_client_secret
        providers[settings.oidc_name] = OidcProvider(
            name=settings.oidc_name,
            issuer=settings.oidc_issuer.rstrip("/"),
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
        )
    return providers


def _failed(message: str) -> Unauthorized:
    return Unauthorized(
        f"Sign-in with the identity provider failed: {message}.", code="oidc_failed"
    )


def _unreachable(provider: OidcProvider) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The identity provider {provider.name!r} is not answering.",
        code="oidc_provider_unavailable",
    )


class OidcLogin:
    def __init__(
        self, providers: dict[str, OidcProvider], tickets: TicketStore, public_url: str
    ) -> None:
        self.providers = providers
        self.tickets = tickets
        self.public_url = public_url.rstrip("/")
        self._metadata: dict[str, tuple[float, dict[str, Any]]] = {}
        self._jwks: dict[str, list[dict[str, Any]]] = {}

    def provider(self, name: str) -> OidcProvider:
        found = self.providers.get(name)
        if found is None:
            raise NotFound(f"No sign-in provider named {name[:64]!r} is configured.")
        return found

    def redirect_uri(self, provider: OidcProvider) -> str:
        return f"{self.public_url}/api/auth/oidc/{provider.name}/callback"

    async def begin(self, name: str) -> OidcRedirect:
        provider = self.provider(name)
        verifier = generate_token(64)
        nonce = generate_token(32)
        async with self._client(provider) as client:
            metadata = await self._discover(client, provider)
            state = await self.tickets.issue(
                PENDING_LOGIN_KIND,
                {"provider": provider.name, "verifier": verifier, "nonce": nonce},
                PENDING_LOGIN_TTL_S,
            )
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"],
                state=state,
                code_verifier=verifier,
                nonce=nonce,
            )
        return OidcRedirect(url=url, state=state)

    async def abandon(self, state: str) -> None:
        """The provider refused: burn the state so it can never complete later."""
        await self.tickets.redeem(PENDING_LOGIN_KIND, state)

    async def complete(self, name: str, *, state: str, code: str) -> OidcClaims:
        provider = self.provider(name)
        pending = await self.tickets.redeem(PENDING_LOGIN_KIND, state)
        if pending is None or pending.get("provider") != provider.name:
            raise BadRequest(
                "This sign-in link is invalid, expired or already used; start again.",
                code="invalid_oidc_state",
            )
        async with self._client(provider) as client:
            metadata = await self._discover(client, provider)
            try:
                token = await client.fetch_token(
                    metadata["token_endpoint"], code=code, code_verifier=pending["verifier"]
                )
            except OAuthError as exc:
                raise _failed(f"the code was refused ({exc.error})") from None
            except (httpx2.HTTPError, ValueError, OSError) as exc:
                log.warning("oidc_token_exchange_failed", provider=provider.name, error=repr(exc))
                raise _failed("the token exchange did not succeed") from None
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise _failed("no id_token was returned")
            claims = await self._verify_id_token(
                client, provider, metadata, id_token, pending["nonce"]
            )
            userinfo = await self._userinfo(client, metadata)
        if userinfo and userinfo.get("sub") != claims["sub"]:
            raise _failed("userinfo names a different subject")
        merged = {**claims, **(userinfo or {})}
        email = merged.get("email")
        verified = merged.get("email_verified")
        name_claim = merged.get("name")
        return OidcClaims(
            provider=provider.name,
            subject=str(claims["sub"]),
            email=email if isinstance(email, str) else None,
            email_verified=verified is True or verified == "true",
            name=name_claim if isinstance(name_claim, str) else None,
        )

    def _client(self, provider: OidcProvider) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            scope=provider.scope,
            redirect_uri=self.redirect_uri(provider),
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT_S,
        )

    async def _get_json(
        self, client: AsyncOAuth2Client, provider: OidcProvider, url: str
    ) -> dict[str, Any]:
        try:
            response = await client.request("GET", url, withhold_token=True)
            response.raise_for_status()
            document = response.json()
        except (httpx2.HTTPError, ValueError, OSError) as exc:
            log.warning("oidc_fetch_failed", provider=provider.name, url=url, error=repr(exc))
            raise _unreachable(provider) from None
        if not isinstance(document, dict):
            raise _unreachable(provider)
        return document

    async def _discover(self, client: AsyncOAuth2Client, provider: OidcProvider) -> dict[str, Any]:
        cached = self._metadata.get(provider.name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        metadata = await self._get_json(
            client, provider, provider.issuer + "/.well-known/openid-configuration"
        )
        if str(metadata.get("issuer", "")).rstrip("/") != provider.issuer or not all(
            isinstance(metadata.get(k), str) for k in _REQUIRED_ENDPOINTS
        ):
            log.warning("oidc_discovery_rejected", provider=provider.name)
            raise _unreachable(provider)
        self._metadata[provider.name] = (time.monotonic() + METADATA_TTL_S, metadata)
        return metadata

    async def _signing_key(
        self,
        client: AsyncOAuth2Client,
        provider: OidcProvider,
        metadata: dict[str, Any],
        header: dict[str, Any],
    ) -> jwt.PyJWK:
        """The JWKS key the header names, fetched again once when unknown (keys rotate)."""
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ID_TOKEN_ALGORITHMS:
            raise _failed("the id_token uses an algorithm Apex does not accept")
        for attempt in range(2):
            if attempt or provider.name not in self._jwks:
                document = await self._get_json(client, provider, metadata["jwks_uri"])
                keys = document.get("keys")
                self._jwks[provider.name] = (
                    [k for k in keys if isinstance(k, dict)] if isinstance(keys, list) else []
                )
            candidates = [
                k
                for k in self._jwks[provider.name]
                if (kid is None or k.get("kid") == kid) and k.get("use", "sig") == "sig"
            ]
            if len(candidates) == 1 and candidates[0].get("alg", alg) == alg:
                try:
                    return jwt.PyJWK(candidates[0], algorithm=alg)
                except jwt.PyJWTError:
                    raise _failed("the provider's signing key is unusable") from None
        raise _failed("the id_token is signed with an unknown key")

    async def _verify_id_token(
        self,
        client: AsyncOAuth2Client,
        provider: OidcProvider,
        metadata: dict[str, Any],
        id_token: str,
        nonce: str,
    ) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise _failed("the id_token is malformed") from None
        key = await self._signing_key(client, provider, metadata, header)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[key.algorithm_name],
                audience=provider.client_id,
                issuer=str(metadata["issuer"]),
                leeway=ID_TOKEN_LEEWAY_S,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise _failed(f"the id_token did not verify ({type(exc).__name__})") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != provider.client_id:
            raise _failed("the id_token was issued to another party")
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise _failed("the id_token nonce does not match this sign-in")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise _failed("the id_token has no subject")
        return claims

    async def _userinfo(
        self, client: AsyncOAuth2Client, metadata: dict[str, Any]
    ) -> dict[str, Any] | None:
        endpoint = metadata.get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return None
        try:
            response = await client.get(endpoint)
            response.raise_for_status()
            info = response.json()
        except (httpx2.HTTPError, ValueError, OSError, OAuthError) as exc:
            log.warning("oidc_userinfo_failed", error=repr(exc))
            raise _failed("the userinfo request did not succeed") from None
        if not isinstance(info, dict):
            raise _failed("the userinfo answer is not an object")
        return info
