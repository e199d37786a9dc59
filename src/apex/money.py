"""How Apex writes an amount of money in prose, headlines and alerts: one format everywhere, so
a figure quoted in a sentence is always recognisably the same figure as in the report."""

from __future__ import annotations


def format_usd(value: float) -> str:
    """`$1,234.57`, `-$0.50`: dollars to the cent with thousands separated."""
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"
