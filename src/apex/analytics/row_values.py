"""Values read back from either engine, as the results want them.

DuckDB and ClickHouse (and Arrow in between) return the same figure as different Python
types: a sum as int, Decimal or float, a time with or without a zone, a list as a list or a
numpy array. These turn each into one type.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


def utc_or_none(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {value!r}")
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def as_decimal(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)


def as_int(value: Any) -> int:
    return 0 if value is None else int(value)


def as_float(value: Any) -> float | None:
    """Percentiles to 6 decimals: the engines may differ in the last bit of a double."""
    if value is None or math.isnan(float(value)):
        return None
    return round(float(value), 6)


def levels_of(value: Any, count: int) -> list[float | None]:
    """A list of quantiles (None when the group had no values) as `count` floats or Nones."""
    values = list(value) if value is not None else []
    return [as_float(values[i]) if i < len(values) else None for i in range(count)]


def latency_levels(value: Any) -> dict[str, float | None]:
    """The p50, p95 and p99 latency of a breakdown row's quantile list, by field name."""
    p50, p95, p99 = levels_of(value, 3)
    return {"p50_latency_ms": p50, "p95_latency_ms": p95, "p99_latency_ms": p99}


def as_day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value
