"""Email addresses as account keys: one spelling per mailbox, so lookups are exact."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from apex.errors import BadRequest

MAX_EMAIL_CHARS = 320


def normalize_email(raw: str) -> str:
    """Syntax-checked, Unicode NFC, IDNA domain, lower case: `Ann@Example.COM` is `ann@example.com`.

    Deliverability is not checked (no DNS lookups on the request path).
    """
    candidate = raw.strip()
    if len(candidate) > MAX_EMAIL_CHARS:
        raise BadRequest("That email address is too long.", code="invalid_email")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise BadRequest(f"That email address is not valid: {exc}", code="invalid_email") from None
    return result.normalized.lower()
