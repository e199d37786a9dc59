"""Confidence and risk from the evidence: the pieces every kind's rule is made of.

A kind's confidence is a product of factors between 0 and 1, each read from its evidence and
named in the kind's module docstring; `bounded` keeps it within 0.05-0.95 (no recommendation
is certain, none is worthless once it passed its thresholds) and rounds it to 2 decimals. Its
risk counts the warning signs in the evidence (`risk_of`).
"""

from __future__ import annotations

import math

from apex.agents.opportunity import Risk

LOWEST = 0.05
HIGHEST = 0.95


def bounded(score: float) -> float:
    """A confidence: `score` within 0.05-0.95, rounded to 2 decimals."""
    return round(min(max(score, LOWEST), HIGHEST), 2)


def support(count: float, half: float) -> float:
    """How much `count` rows (or repeats) support a finding: 0 with none, 1/2 at `half`,
    towards 1 beyond."""
    return count / (count + half) if count > 0 else 0.0


def steadiness(high: float, median: float) -> float:
    """How predictable a signal is from its spread (a high percentile over the median): 1 when
    they are equal, 2/3 at 4 times, 1/2 at 16 times."""
    if median <= 0:
        return 1.0 if high <= 0 else 0.5
    return 1 / (1 + math.log2(max(high / median, 1.0)) / 4)


def separation(high: float, median: float, threshold: float) -> float:
    """How clearly a tail stands apart, for a tail that qualified at `threshold` x the median:
    1/2 right at the threshold, towards 1 far beyond it."""
    ratio = high / median if median > 0 else threshold
    return max(1 - threshold / (2 * max(ratio, threshold)), 0.0)


def risk_of(warnings: int) -> Risk:
    """No warning sign: low; one: medium; more: high."""
    return "low" if warnings <= 0 else "medium" if warnings == 1 else "high"
