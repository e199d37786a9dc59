"""JWT access tokens, verified in-process on every request: no network hop, no database read."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt

from apex.auth.principal import Principal
from apex.config import Settings
from apex.errors import Unauthorized

ACCESS_TOKEN_TYPE = "access"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti", "typ", "iss", "aud"]
MAX_TOKEN_CHARS = 4_096
VERIFIED_CACHE_SIZE = 4_096


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    token_id: str
    expires_in: int


def _invalid() -> Unauthorized:
    return Unauthorized("The access token is invalid.", code="invalid_token")


class AccessTokenService:
    """Signs and verifies access tokens with exactly one configured algorithm (never `none`).

    A client presents the same token on every request until it expires, so tokens that passed
    full verification are remembered (keyed by the whole token, signature included) until their
    own expiry: a repeat costs one dictionary lookup instead of a signature check. A tampered
    token is a different string, so it can never hit this cache.
    """

    def __init__(self, settings: Settings) -> None:
        self.algorithm = settings.jwt_algorithm
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl_s = settings.access_token_ttl_s
        if self.algorithm == "HS256":
            assert settings.jwt_secret is not None, "Settings.prepare() settles the secret"
            secret = settings.jwt_secret.get_secret_value()
            self._signing_key: object = secret
            self._verifying_key: object = secret
        else:
            assert settings.jwt_private_key_file and settings.jwt_public_key_file
            self._signing_key = Path(settings.jwt_private_key_file).read_bytes()
            self._verifying_key = Path(settings.jwt_public_key_file).read_bytes()
        self._decoder = jwt.PyJWT(options={"require": REQUIRED_CLAIMS})
        self._verified: dict[str, tuple[float, Principal]] = {}

    def issue(self, user_id: str, session_id: str | None = None) -> IssuedAccessToken:
        """`session_id` ties the token to its sign-in, so ending that sign-in revokes it too."""
        now = int(time.time())
        token_id = secrets.token_hex(16)
        claims: dict[str, Any] = {
            "sub": user_id,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": token_id,
            "typ": ACCESS_TOKEN_TYPE,
            "iss": self.issuer,
            "aud": self.audience,
        }
        if session_id is not None:
            claims["sid"] = session_id
        token = jwt.encode(claims, self._signing_key, algorithm=self.algorithm)  # type: ignore[arg-type]
        return IssuedAccessToken(token=token, token_id=token_id, expires_in=self.ttl_s)

    def verify(self, token: str) -> Principal:
        """Signature, algorithm, expiry, issuer, audience and type; any failure is 401."""
        remembered = self._verified.get(token)
        if remembered is not None:
            if remembered[0] > time.time():
                return remembered[1]
            del self._verified[token]
        if len(token) > MAX_TOKEN_CHARS:
            raise _invalid()
        principal = self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal.expires_at.timestamp(), principal)
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = self._decoder.decode(
                token,
                self._verifying_key,  # type: ignore[arg-type]
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired.", code="token_expired") from None
        except jwt.PyJWTError:
            raise _invalid() from None
        session_id = claims.get("sid")
        if (
            claims.get("typ") != ACCESS_TOKEN_TYPE
            or not isinstance(claims.get("sub"), str)
            or not isinstance(claims.get("jti"), str)
            or not isinstance(session_id, str | None)
        ):
            raise _invalid()
        return Principal(
            user_id=claims["sub"],
            token_id=claims["jti"],
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            session_id=session_id,
        )
