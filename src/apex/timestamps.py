"""The one time format of the protocol: ISO 8601 UTC with milliseconds and a `Z`.

It sits at the bottom of the package so the event envelope, the HTTP answers, the ledger's
results and the report all format time the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """The usage ledger keeps UTC timestamps without a zone: a naive value from it is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """Refuses a naive value: outside the ledger, a time without a zone is a bug, not UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime cannot be formatted as UTC")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
