"""Money as the monitoring tables keep it: whole micro-dollars, exact to the ledger's cent."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

MICRO = Decimal("0.000001")
MICROS_PER_USD = 1_000_000


def to_micros(amount: Decimal) -> int:
    return int((amount / MICRO).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_micros(micros: int) -> Decimal:
    return Decimal(micros) * MICRO


def micros_json(micros: int | None) -> float | None:
    """A micro-dollar amount as a JSON number of dollars (exact to the micro-dollar)."""
    return None if micros is None else float(from_micros(micros))
