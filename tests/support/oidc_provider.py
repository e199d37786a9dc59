"""A real OIDC provider on a loopback port: discovery, JWKS, authorize, token and userinfo.

It speaks the wire format of a real provider (RFC 6749 authorization code, RFC 7636 PKCE with
S256, OpenID Connect Core id_tokens signed RS256 with a published JWKS), checks everything a
strict provider checks, and signs the person in without a login form: tests choose who that is
(`provider.person`) and, to prove Apex's checks, how the provider should misbehave.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support.services import free_port

CLIENT_ID = "apex-test-client"
CLIENT_SECRET = "apex-test-secret-" + "s" * 24


@dataclass
class Person:
    subject: str
    email: str | None
    email_verified: bool = True
    name: str | None = None


@dataclass
class PendingCode:
    redirect_uri: str
    challenge: str
    nonce: str | None
    person: Person
    expires_at: float


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcTestProvider:
    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.keys = [SigningKey(kid="key-1")]
        self.reset()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def reset(self) -> None:
        """Back to a well-behaved provider that signs in one verified person."""
        self.person = Person(
            subject=f"sub-{secrets.token_hex(6)}",
            email=f"oidc-{secrets.token_hex(6)}@example.com",
            name="Olive Idc",
        )
        self.id_token_overrides: dict[str, Any] = {}
        self.sign_with: SigningKey | None = None
        self.id_token_alg = "RS256"
        self.userinfo_subject: str | None = None
        self.deny = False
        self.codes: dict[str, PendingCode] = {}
        self.access_tokens: dict[str, Person] = {}
        self.token_requests: list[dict[str, str]] = []
        self.authorize_requests: list[dict[str, str]] = []

    def rotate_key(self) -> None:
        """A new signing key, published first in the JWKS, the old one dropped."""
        self.keys = [SigningKey(kid=f"key-{len(self.keys) + 1}-{secrets.token_hex(3)}")]

    # -- HTTP endpoints -------------------------------------------------------------------

    async def discovery(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            }
        )

    async def jwks(self, _request: Request) -> Response:
        return JSONResponse({"keys": [key.jwk() for key in self.keys]})

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.authorize_requests.append(params)
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != CLIENT_ID or not redirect_uri.startswith("http"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        state = params.get("state", "")
        if self.deny:
            return RedirectResponse(
                f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': state})}", 302
            )
        problems = [
            params.get("response_type") != "code",
            "openid" not in params.get("scope", "").split(),
            params.get("code_challenge_method") != "S256",
            len(params.get("code_challenge", "")) != 43,
            not state,
        ]
        if any(problems):
            return RedirectResponse(
                f"{redirect_uri}?{urlencode({'error': 'invalid_request', 'state': state})}", 302
            )
        code = secrets.token_urlsafe(24)
        self.codes[code] = PendingCode(
            redirect_uri=redirect_uri,
            challenge=params["code_challenge"],
            nonce=params.get("nonce"),
            person=self.person,
            expires_at=time.time() + 60,
        )
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", 302)

    def _client_authenticated(self, request: Request, form: dict[str, str]) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            return client_id == CLIENT_ID and secret == CLIENT_SECRET
        return form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_requests.append(form)
        if not self._client_authenticated(request, form):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        pending = self.codes.pop(form.get("code", ""), None)
        if (
            form.get("grant_type") != "authorization_code"
            or pending is None
            or pending.expires_at < time.time()
            or form.get("redirect_uri") != pending.redirect_uri
            or _s256(form.get("code_verifier", "")) != pending.challenge
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        access_token = secrets.token_urlsafe(24)
        self.access_tokens[access_token] = pending.person
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": self._id_token(pending),
            },
            headers={"Cache-Control": "no-store"},
        )

    def _id_token(self, pending: PendingCode) -> str:
        now = int(time.time())
        person = pending.person
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": person.subject,
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": pending.nonce,
            "email": person.email,
            "email_verified": person.email_verified,
            "name": person.name,
        }
        claims.update(self.id_token_overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        if self.id_token_alg == "HS256":
            return jwt.encode(
                claims, CLIENT_SECRET, algorithm="HS256", headers={"kid": self.keys[0].kid}
            )
        key = self.sign_with or self.keys[0]
        return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})

    async def userinfo(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        person = self.access_tokens.get(header.removeprefix("Bearer "))
        if not header.startswith("Bearer ") or person is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(
            {
                "sub": self.userinfo_subject or person.subject,
                "email": person.email,
                "email_verified": person.email_verified,
                "name": person.name,
            }
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> OidcTestProvider:
        app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="oidc-test-provider", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the OIDC test provider did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
