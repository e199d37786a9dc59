"""What recommendations save together: applied one after another over the same spend.

Two recommendations often act on the same calls: routing a group to a cheaper model leaves less
for caching or batching that group to save, and two kinds can never save more than the spend
they share. So each opportunity says which spend it acts on (`Opportunity.spend`: per
(provider, model, feature) group, the group's period cost and what it saves of it alone), and
`combine` applies them in turn:

- Order: largest standalone period saving first (ties by id), so each saving is credited to
  the recommendation that finds most.
- Rule: every group starts at its period spend. An opportunity saves the same fraction of what
  is still left of a group as it saves of the whole group on its own; what it saves is taken
  off before the next one is applied. A group's combined saving is therefore
  `spend x (1 - (1 - f1)(1 - f2)...)`: never more than the spend, and the plain sum when no
  two opportunities touch the same group.

The total does not depend on the order (the product commutes); the order only decides how much
of an overlap each recommendation is credited with. Amounts stay exact `Decimal`s (28
significant digits), never rounded to cents before the report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from apex.agents.opportunity import GroupKey, Opportunity


@dataclass(frozen=True, slots=True)
class AppliedOpportunity:
    """One opportunity and what it still saves after the ones applied before it."""

    opportunity: Opportunity
    period_savings_usd: Decimal


@dataclass(frozen=True, slots=True)
class CombinedSavings:
    period_savings_usd: Decimal
    applied: tuple[AppliedOpportunity, ...]


def application_order(opportunities: Iterable[Opportunity]) -> list[Opportunity]:
    """Largest standalone period saving first, then by id."""
    return sorted(opportunities, key=lambda o: (-o.period_savings_usd, o.id))


def combine(opportunities: Iterable[Opportunity]) -> CombinedSavings:
    """Apply the opportunities one after another over the same spend (module docstring)."""
    ordered = application_order(opportunities)
    remaining: dict[GroupKey, Decimal] = {}
    for opportunity in ordered:
        for share in opportunity.spend:
            remaining[share.key] = max(remaining.get(share.key, Decimal(0)), share.cost_usd)
    applied: list[AppliedOpportunity] = []
    for opportunity in ordered:
        saved = Decimal(0)
        for share in opportunity.spend:
            taken = share.saved_of(remaining[share.key])
            remaining[share.key] -= taken
            saved += taken
        applied.append(AppliedOpportunity(opportunity, saved))
    return CombinedSavings(
        sum((item.period_savings_usd for item in applied), Decimal(0)), tuple(applied)
    )
