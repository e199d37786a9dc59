"""Who is calling: the verified identity every protected route and connection is scoped by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """`session_id` names the sign-in (refresh family) the token belongs to, when it has one."""

    user_id: str
    token_id: str
    expires_at: datetime
    session_id: str | None = None
