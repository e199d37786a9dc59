"""Builds every authentication service from Settings, in process or on Redis, and closes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from apex.auth.accounts import AccountService
from apex.auth.oidc import OidcLogin, configured_providers
from apex.auth.passwords import Passwords
from apex.auth.ratelimit import LocalRateLimiter, RateLimiter, RateLimits, RedisRateLimiter
from apex.auth.refresh import RefreshTokens
from apex.auth.revocation import RecordedRevocationList, RedisRevocationList, RevocationList
from apex.auth.service import AuthService
from apex.auth.tickets import LocalTicketStore, RedisTicketStore, TicketStore
from apex.auth.tokens import AccessTokenService
from apex.config import Settings
from apex.shared_redis.client import redis_client
from apex.store.database import Database
from apex.store.repositories.oidc_identities import OidcIdentityRepository
from apex.store.repositories.refresh_tokens import RefreshTokenRepository
from apex.store.repositories.revocations import RevocationRepository
from apex.store.repositories.users import UserRepository

if TYPE_CHECKING:
    import redis.asyncio as aioredis


@dataclass(frozen=True, slots=True)
class AuthBackends:
    """Where tickets and rate-limit counters live (this process, or Redis), and how revocations,
    recorded in the app database, reach every process."""

    revocations: RevocationList
    tickets: TicketStore
    limiter: RateLimiter
    redis: aioredis.Redis | None = None

    @classmethod
    def for_settings(cls, settings: Settings, db: Database) -> AuthBackends:
        record = RevocationRepository(db)
        if not settings.redis_url:
            return cls(RecordedRevocationList(record), LocalTicketStore(), LocalRateLimiter())
        client = redis_client(settings.redis_url)
        prefix = settings.redis_key_prefix
        return cls(
            RedisRevocationList(record, client, prefix),
            RedisTicketStore(client, prefix),
            RedisRateLimiter(client, prefix),
            client,
        )

    async def start(self) -> None:
        await self.revocations.start()

    async def close(self) -> None:
        await self.revocations.close()
        await self.tickets.close()
        await self.limiter.close()
        if self.redis is not None:
            await self.redis.aclose()


@dataclass(frozen=True, slots=True)
class AuthStack:
    access_tokens: AccessTokenService
    auth: AuthService
    accounts: AccountService
    oidc: OidcLogin
    passwords: Passwords
    backends: AuthBackends

    async def close(self) -> None:
        await self.backends.close()


async def open_auth_stack(settings: Settings, db: Database) -> AuthStack:
    backends = AuthBackends.for_settings(settings, db)
    await backends.start()
    access_tokens = AccessTokenService(settings)
    refresh_tokens = RefreshTokens(RefreshTokenRepository(db), settings.refresh_token_ttl_s)
    auth = AuthService(
        access_tokens,
        revocations=backends.revocations,
        tickets=backends.tickets,
        refresh_tokens=refresh_tokens,
        ws_ticket_ttl_s=settings.ws_ticket_ttl_s,
    )
    passwords = Passwords(settings)
    accounts = AccountService(
        settings,
        users=UserRepository(db),
        identities=OidcIdentityRepository(db),
        passwords=passwords,
        access_tokens=access_tokens,
        refresh_tokens=refresh_tokens,
        auth=auth,
        rate_limits=RateLimits(backends.limiter),
    )
    oidc = OidcLogin(configured_providers(settings), backends.tickets, settings.resolved_public_url)
    return AuthStack(
        access_tokens=access_tokens,
        auth=auth,
        accounts=accounts,
        oidc=oidc,
        passwords=passwords,
        backends=backends,
    )
