"""One quantified saving found in the rows, before it is ranked and written into the report.

Every kind of recommendation (`apex.agents.kinds`) returns `Opportunity`s: the saving over the
analysed period in exact USD, the requests it touches, the evidence it rests on, and the spend
it acts on (`SpendShare`s, one per (provider, model, feature) group). The spend is what lets
recommendations be combined without counting an overlap twice (`apex.agents.combined`). The
optimization agent turns them into report entries (monthly savings, shares, ids).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from apex.agents.scope import AnalysisScope, UsageData, micro_usd

Risk = Literal["low", "medium", "high"]
GroupKey = tuple[str, str, str]
_SLUG = re.compile(r"[^a-z0-9]+")


def slug(*parts: str) -> str:
    return "-".join(_SLUG.sub("-", part.lower()).strip("-") for part in parts if part)[:120]


@dataclass(frozen=True, slots=True)
class SpendShare:
    """The period spend of one (provider, model, feature) group an opportunity acts on, and
    what it would save of that spend on its own."""

    provider: str
    model: str
    feature: str
    cost_usd: Decimal
    savings_usd: Decimal

    @property
    def key(self) -> GroupKey:
        return (self.provider, self.model, self.feature)

    @property
    def fraction(self) -> Decimal:
        """The part of the group's spend saved, 0 to 1."""
        if self.cost_usd <= 0:
            return Decimal(0)
        return min(max(self.savings_usd / self.cost_usd, Decimal(0)), Decimal(1))

    def saved_of(self, left: Decimal) -> Decimal:
        """What it saves when `left` of the group's spend is still there: its own saving while
        nothing else was taken, else the same fraction of what is left."""
        if left == self.cost_usd:
            return min(max(self.savings_usd, Decimal(0)), self.cost_usd)
        return left * self.fraction

    def to_report(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "feature": self.feature,
            "cost_usd": micro_usd(self.cost_usd),
            "savings_usd": micro_usd(self.savings_usd),
        }


def _group_cost(
    data: UsageData, provider: str, model: str, feature: str | None
) -> dict[str, Decimal]:
    """Spend per feature of one model in the rows read (every operation of a feature summed)."""
    costs: dict[str, Decimal] = {}
    for row in data.mix:
        if (row.provider, row.model) == (provider, model) and feature in (None, row.feature):
            costs[row.feature] = costs.get(row.feature, Decimal(0)) + row.cost_usd
    return costs


def group_spend(
    data: UsageData, provider: str, model: str, feature: str, savings: Decimal
) -> tuple[SpendShare, ...]:
    """A saving that falls on one (provider, model, feature) group."""
    cost = _group_cost(data, provider, model, feature).get(feature, Decimal(0))
    return (SpendShare(provider, model, feature, max(cost, savings), savings),)


def model_spend(
    data: UsageData, provider: str, model: str, savings: Decimal
) -> tuple[SpendShare, ...]:
    """A saving the ledger measures per model, spread over the model's feature groups in
    proportion to their spend (the same fraction of each), since it does not say which
    feature's calls it comes from."""
    costs = {
        feature: cost
        for feature, cost in _group_cost(data, provider, model, None).items()
        if cost > 0
    }
    total = sum(costs.values(), Decimal(0))
    if total < savings or not costs:
        return (SpendShare(provider, model, "", max(total, savings), savings),)
    return tuple(
        SpendShare(provider, model, feature, cost, savings * cost / total)
        for feature, cost in sorted(costs.items())
    )


@dataclass(frozen=True, slots=True)
class Opportunity:
    kind: str
    key: str
    title: str
    period_savings_usd: Decimal
    requests: int
    confidence: float
    risk: Risk
    evidence: dict[str, Any] = field(default_factory=dict)
    spend: tuple[SpendShare, ...] = ()

    @property
    def id(self) -> str:
        return slug(self.kind, self.key)

    def to_report(
        self, scope: AnalysisScope, *, total_cost: Decimal, total_requests: int
    ) -> dict[str, Any]:
        """The recommendation as PROTOCOL.md section 4 lists it."""
        monthly = scope.monthly(self.period_savings_usd)
        pct = (100 * self.period_savings_usd / total_cost) if total_cost > 0 else Decimal(0)
        acts_on = {"acts_on": [share.to_report() for share in self.spend]} if self.spend else {}
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "monthly_savings_usd": round(float(monthly), 2),
            "savings_pct": round(float(pct), 2),
            "confidence": self.confidence,
            "risk": self.risk,
            "traffic_share": round(self.requests / total_requests, 4) if total_requests else 0.0,
            "evidence": {
                **self.evidence,
                **acts_on,
                "period_savings_usd": micro_usd(self.period_savings_usd),
                "requests_affected": self.requests,
            },
        }
