"""The periods a read covers when its caller names none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apex.analytics.results import UsagePeriod

ALL_TIME = UsagePeriod(start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC))
DEFAULT_WINDOW = timedelta(days=30)


def default_period_ending(newest: datetime) -> UsagePeriod:
    """The 30 days that end at the caller's newest row (PROTOCOL.md section 4), on whole
    milliseconds (as the report shows times) and with the newest row inside."""
    end = newest.replace(microsecond=newest.microsecond // 1000 * 1000) + timedelta(milliseconds=1)
    return UsagePeriod(start=end - DEFAULT_WINDOW, end=end)
