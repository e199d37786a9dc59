"""JWT access tokens, verified in-process on every request: no network hop, no database read."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jwt

from apex.auth.principal import Principal
from apex.config import Settings
from apex.errors import Unauthorized

ACCESS_TOKEN_TYPE = "access"
REQUIRED_CLAIMS = ["sub", "iat", "exp", "jti", "typ", "iss", "aud"]


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    token_id: str
    expires_in: int


class AccessTokenService:
    """Signs and verifies access tokens with exactly one configured algorithm (never `none`)."""

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

    def issue(self, user_id: str) -> IssuedAccessToken:
        now = int(time.time())
        token_id = secrets.token_hex(16)
        claims = {
            "sub": user_id,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": token_id,
            "typ": ACCESS_TOKEN_TYPE,
            "iss": self.issuer,
            "aud": self.audience,
        }
        token = jwt.encode(claims, self._signing_key, algorithm=self.algorithm)  # type: ignore[arg-type]
        return IssuedAccessToken(token=token, token_id=token_id, expires_in=self.ttl_s)

    def verify(self, token: str) -> Principal:
        """Signature, algorithm, expiry, issuer, audience and type; any failure is 401."""
        try:
            claims = jwt.decode(
                token,
                self._verifying_key,  # type: ignore[arg-type]
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired.", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("The access token is invalid.", code="invalid_token") from None
        if claims.get("typ") != ACCESS_TOKEN_TYPE or not isinstance(claims.get("sub"), str):
            raise Unauthorized("The access token is invalid.", code="invalid_token")
        return Principal(
            user_id=claims["sub"],
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
