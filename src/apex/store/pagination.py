"""Keyset pagination: an opaque cursor naming the last row a page ended on.

Keyset (not offset) so a page is one indexed range scan however deep the client pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from apex.errors import BadRequest

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_of(rows: list[T], limit: int, position: Callable[[T], tuple[datetime, str]]) -> Page[T]:
    """The page of up to `limit + 1` rows read in page order: the extra row only says that
    there is more, and the cursor names the last row kept (`position`: its moment and id)."""
    kept = rows[:limit]
    return Page(kept, encode_cursor(*position(kept[-1])) if len(rows) > limit else None)


def encode_cursor(moment: datetime, row_id: str) -> str:
    raw = json.dumps([moment.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; anything else is the client's mistake (400)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, row_id = json.loads(raw)
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None or not isinstance(row_id, str):
            raise ValueError("incomplete cursor")
        return parsed, row_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(
            "The cursor is not one this server issued.", code="invalid_cursor"
        ) from None
