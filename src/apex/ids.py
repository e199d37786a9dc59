"""Opaque, time-ordered ids: sortable by creation, unguessable, the same on every database."""

from __future__ import annotations

import os
import time


def new_id() -> str:
    """48 bits of milliseconds then 80 random bits, as 32 hex characters (UUIDv7-like)."""
    millis = time.time_ns() // 1_000_000
    return f"{millis:012x}{os.urandom(10).hex()}"
