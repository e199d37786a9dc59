"""The key that names an alert's cause and period: the same finding always gets the same key,
whichever process makes it, and the database keeps one alert per key."""

from __future__ import annotations

import hashlib


def cause_key(*parts: str) -> str:
    """64 hex characters, whatever the parts (model names can be long)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
