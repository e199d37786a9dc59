"""One quantified saving found in the rows, before it is ranked and written into the report.

Every kind of recommendation (`apex.agents.kinds`) returns `Opportunity`s: the saving over the
analysed period in exact USD, the requests it touches and the evidence it rests on. The
optimization agent turns them into report entries (monthly savings, shares, ids).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from apex.agents.scope import AnalysisScope, usd

Risk = Literal["low", "medium", "high"]
_SLUG = re.compile(r"[^a-z0-9]+")


def slug(*parts: str) -> str:
    return "-".join(_SLUG.sub("-", part.lower()).strip("-") for part in parts if part)[:120]


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

    @property
    def id(self) -> str:
        return slug(self.kind, self.key)

    def to_report(self, scope: AnalysisScope, *, total_cost: Decimal,
                  total_requests: int) -> dict[str, Any]:
        """The recommendation as PROTOCOL.md section 4 lists it."""
        monthly = scope.monthly(self.period_savings_usd)
        pct = (100 * self.period_savings_usd / total_cost) if total_cost > 0 else Decimal(0)
        return {
            "id": self.id, "kind": self.kind, "title": self.title,
            "monthly_savings_usd": round(float(monthly), 2),
            "savings_pct": round(float(pct), 2),
            "confidence": self.confidence, "risk": self.risk,
            "traffic_share": round(self.requests / total_requests, 4) if total_requests else 0.0,
            "evidence": {**self.evidence,
                         "period_savings_usd": usd(self.period_savings_usd),
                         "requests_affected": self.requests},
        }
