"""Signing in: register, log in, refresh, development login and OIDC, each ending in a token pair."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from apex.auth.emails import normalize_email
from apex.auth.oidc import OidcClaims
from apex.auth.passwords import Passwords, check_password_policy
from apex.auth.ratelimit import RateLimitRule, RateLimits
from apex.auth.refresh import RefreshTokens, invalid_refresh_token
from apex.auth.service import AuthService
from apex.auth.tokens import AccessTokenService, IssuedAccessToken
from apex.config import Settings
from apex.config.logging import get_logger
from apex.errors import ApexError, BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from apex.store.models import User
from apex.store.repositories.oidc_identities import OidcIdentityRepository
from apex.store.repositories.users import UserRepository
from apex.store.types import utcnow

log = get_logger("apex.auth.accounts")

DEV_LOGIN_EMAIL = "dev@example.com"
MAX_NAME_CHARS = 200


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A fresh sign-in (or refresh): the account and its new token pair."""

    user: User
    access: IssuedAccessToken
    refresh_token: str


def _invalid_credentials() -> Unauthorized:
    return Unauthorized("The email or password is not correct.", code="invalid_credentials")


def _disabled() -> Forbidden:
    return Forbidden("This account has been disabled by an administrator.", code="account_disabled")


def clean_name(raw: str | None) -> str | None:
    """Display names are free text, but never control characters (they break logs and terminals)."""
    if raw is None or not raw.strip():
        return None
    name = unicodedata.normalize("NFC", raw.strip())
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(
            f"The name can be at most {MAX_NAME_CHARS} characters.", code="invalid_name"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise BadRequest("The name cannot contain control characters.", code="invalid_name")
    return name


class AccountService:
    def __init__(
        self,
        settings: Settings,
        *,
        users: UserRepository,
        identities: OidcIdentityRepository,
        passwords: Passwords,
        access_tokens: AccessTokenService,
        refresh_tokens: RefreshTokens,
        auth: AuthService,
        rate_limits: RateLimits,
    ) -> None:
        self.users = users
        self.identities = identities
        self.passwords = passwords
        self.access_tokens = access_tokens
        self.refresh_tokens = refresh_tokens
        self.auth = auth
        self.rate_limits = rate_limits
        self.dev_login_enabled = settings.is_development
        self.login_rule = RateLimitRule("login", settings.rate_limit_login_per_minute)
        self.register_rule = RateLimitRule("register", settings.rate_limit_register_per_minute)
        self.refresh_rule = RateLimitRule("refresh", settings.rate_limit_refresh_per_minute)

    async def register(
        self, *, email: str, password: str, name: str | None, client_ip: str
    ) -> SignedIn:
        await self.rate_limits.check(self.register_rule, ip=client_ip)
        normalized = normalize_email(email)
        await self.rate_limits.check(self.register_rule, account=normalized)
        check_password_policy(password)
        display_name = clean_name(name)
        password_hash = await self.passwords.hash(password)
        user = await self.users.create(
            email=normalized, password_hash=password_hash, name=display_name
        )
        log.info("account_registered", user_id=user.id)
        return await self._start_session(user)

    async def login(self, *, email: str, password: str, client_ip: str) -> SignedIn:
        """Unknown email, malformed email and wrong password: one answer, one argon2 verification."""
        await self.rate_limits.check(self.login_rule, ip=client_ip)
        try:
            normalized = normalize_email(email)
        except BadRequest:
            normalized = None
        await self.rate_limits.check(self.login_rule, account=normalized or email.strip().lower())
        user = await self.users.get_by_email(normalized) if normalized else None
        password_hash = user.password_hash if user else None
        matched = await self.passwords.verify(password_hash, password)
        if user is None or not matched:
            log.info("login_failed", known_account=user is not None)
            raise _invalid_credentials()
        assert password_hash is not None, "verify() is False without a stored hash"
        if self.passwords.needs_rehash(password_hash):
            await self.users.set_password_hash(user.id, await self.passwords.hash(password))
        return await self._start_session(user)

    async def refresh(self, *, refresh_token: str, client_ip: str) -> SignedIn:
        """Spend the token, mint its successor; a spent token presented again ends the sign-in."""
        await self.rate_limits.check(self.refresh_rule, ip=client_ip)
        record = await self.refresh_tokens.lookup(refresh_token)
        await self.rate_limits.check(self.refresh_rule, account=record.user_id)
        user = await self.users.get(record.user_id)
        if user is None:
            raise invalid_refresh_token("belongs to an account that no longer exists")
        if user.disabled_at is not None:
            raise _disabled()
        successor = await self.refresh_tokens.rotate(record)
        if successor is None:
            await self.auth.revoke_session(record.family_id, "reuse")
            log.warning("refresh_token_reused", user_id=record.user_id, family_id=record.family_id)
            raise Unauthorized(
                "This refresh token was already used, so this sign-in has been ended everywhere "
                "as a precaution; sign in again.",
                code="refresh_token_reused",
            )
        access = self.access_tokens.issue(user.id, session_id=successor.family_id)
        return SignedIn(user=user, access=access, refresh_token=successor.token)

    async def dev_login(self, email: str | None) -> SignedIn:
        """One click, no password: only a server running in development mode offers it."""
        if not self.dev_login_enabled:
            raise NotFound("Not found.")
        normalized = normalize_email(email or DEV_LOGIN_EMAIL)
        user = await self.users.get_by_email(normalized)
        if user is None:
            user = await self._create_or_fetch(normalized, name="Developer")
        return await self._start_session(user)

    async def oidc_login(self, claims: OidcClaims) -> SignedIn:
        """The linked account, else the account with this verified email, else a new account."""
        user_id = await self.identities.find_user_id(claims.provider, claims.subject)
        if user_id is None:
            if not claims.email or not claims.email_verified:
                raise Forbidden(
                    "Your identity provider did not confirm a verified email address, which Apex "
                    "needs to link your account.",
                    code="email_not_verified",
                )
            normalized = normalize_email(claims.email)
            user = await self.users.get_by_email(normalized)
            if user is None:
                user = await self._create_or_fetch(normalized, name=_safe_name(claims.name))
            user_id = await self.identities.link(
                user_id=user.id, provider=claims.provider, subject=claims.subject, email=normalized
            )
        user = await self.users.get(user_id)
        if user is None:
            raise Conflict("The account changed during sign-in; please sign in again.")
        return await self._start_session(user)

    async def get_user(self, user_id: str) -> User:
        user = await self.users.get(user_id)
        if user is None:
            raise Unauthorized("This account no longer exists.", code="invalid_token")
        return user

    async def delete_account(self, user_id: str) -> None:
        """Erase the account from the app store, then deny its tokens everywhere at once (the
        usage ledger is erased by the caller first, while the account can still retry)."""
        if await self.users.delete(user_id):
            log.info("account_deleted", user_id=user_id)
        await self.auth.revoke_account(user_id)

    async def disable(self, email: str) -> int:
        """An operator's decision: the account can no longer sign in or refresh, and every
        sign-in it has is ended on every process at once (its tokens are refused, its open
        sockets close with 1008). Returns how many sign-ins were ended."""
        user = await self._by_email(email)
        await self.users.set_disabled(user.id, utcnow())
        sessions = await self.users.live_sign_in_ids(user.id)
        await self.auth.revoke_sessions(sessions, "disabled")
        log.info("account_disabled", user_id=user.id, sign_ins=len(sessions))
        return len(sessions)

    async def enable(self, email: str) -> None:
        """Lift `disable`: the account may sign in again (its ended sign-ins stay ended)."""
        user = await self._by_email(email)
        await self.users.set_disabled(user.id, None)
        log.info("account_enabled", user_id=user.id)

    async def _by_email(self, email: str) -> User:
        user = await self.users.get_by_email(normalize_email(email))
        if user is None:
            raise NotFound(f"No account with the email {email!r}.", code="user_not_found")
        return user

    async def _create_or_fetch(self, email: str, *, name: str | None) -> User:
        """Create a password-less account; if a concurrent request just created it, use that one."""
        try:
            return await self.users.create(email=email, password_hash=None, name=name)
        except Conflict:
            existing = await self.users.get_by_email(email)
            if existing is None:
                raise
            return existing

    async def _start_session(self, user: User) -> SignedIn:
        """Every way of signing in ends here, so a disabled account is refused here (after the
        password check: who does not know the password learns nothing of the account)."""
        if user.disabled_at is not None:
            raise _disabled()
        refresh = await self.refresh_tokens.start(user.id)
        # a disable that ran since the check listed the account's sign-ins before this one
        # existed, so it did not end it: looked at again, the account is still enabled (then
        # any later disable lists this sign-in), or this sign-in is ended here
        current = await self.users.get(user.id)
        if current is None or current.disabled_at is not None:
            await self.auth.revoke_sessions([refresh.family_id], "disabled")
            raise _disabled()
        access = self.access_tokens.issue(user.id, session_id=refresh.family_id)
        return SignedIn(user=current, access=access, refresh_token=refresh.token)


def _safe_name(raw: str | None) -> str | None:
    """A provider's display name is a nicety: an unusable one is dropped, not an error."""
    try:
        return clean_name(raw[:MAX_NAME_CHARS] if raw else None)
    except ApexError:
        return None
