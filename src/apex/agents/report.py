"""The report of a run (PROTOCOL.md sections 4 and 5) as one typed model, serialized once.

Every agent contributes a part (triage the question, data the totals and per-model spend,
optimization the recommendations, actions the plan, reporting the answer and the Markdown); the
final event and `GET /api/runs/{id}` carry `Report.to_protocol()`, and the Markdown is rendered
from the same model, so what is read and what is exported never differ.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from apex.agents.question import ReportPeriod, ReportQuestion
from apex.agents.scope import micro_usd
from apex.analytics.results import ModelUsage, UsageTotals

CENT = Decimal("0.01")


def cents(amount: Decimal) -> float:
    """USD rounded to the cent, as `figures` carry money (half up, from the exact sum)."""
    return float(amount.quantize(CENT, rounding=ROUND_HALF_UP))


class Answer(BaseModel):
    """`report.answer`: the question's own answer, before any recommendation."""

    model_config = ConfigDict(frozen=True)

    headline: str
    figures: dict[str, Any] = Field(default_factory=dict)
    table: list[dict[str, Any]] = Field(default_factory=list)


def unpriced_note(unpriced_requests: int) -> str:
    """What a sum of spend leaves out, to follow the amount ('' when every request is priced):
    a model no price is known for adds nothing to a cost, and a total must say so."""
    if not unpriced_requests:
        return ""
    return f" ({unpriced_requests:,} requests of models with no known price are not in the cost)"


class Totals(BaseModel):
    """`cost_usd` leaves out the `unpriced_requests` (models no price is known for)."""

    requests: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    unpriced_requests: int = 0

    @classmethod
    def of(cls, totals: UsageTotals) -> Totals:
        return cls(
            requests=totals.requests,
            cost_usd=micro_usd(totals.cost_usd),
            input_tokens=totals.input_tokens,
            output_tokens=totals.output_tokens,
            errors=totals.errors,
            unpriced_requests=totals.unpriced_requests,
        )


class ModelLine(BaseModel):
    """`cost_usd` is None for a model none of whose requests could be priced."""

    provider: str
    model: str
    requests: int
    cost_usd: float | None
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    unpriced_requests: int = 0

    @classmethod
    def of(cls, usage: ModelUsage) -> ModelLine:
        unpriced = usage.requests > 0 and usage.unpriced_requests == usage.requests
        return cls(
            provider=usage.provider,
            model=usage.model,
            requests=usage.requests,
            cost_usd=None if unpriced else micro_usd(usage.cost_usd),
            p50_latency_ms=usage.p50_latency_ms,
            p95_latency_ms=usage.p95_latency_ms,
            unpriced_requests=usage.unpriced_requests,
        )


class Recommendation(BaseModel):
    """One ranked recommendation (PROTOCOL.md section 4); kinds may add fields."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: str
    title: str
    monthly_savings_usd: float
    savings_pct: float
    confidence: float
    risk: str
    traffic_share: float
    evidence: dict[str, Any] = Field(default_factory=dict)


class Action(BaseModel):
    """The plan for one recommendation: steps, a config snippet in `config_format`, how to
    validate it and how to roll it back."""

    model_config = ConfigDict(extra="allow")

    recommendation_id: str
    title: str
    steps: list[str]
    config_snippet: str
    config_format: str = "yaml"
    validation: str
    rollback: str


class Report(BaseModel):
    question: ReportQuestion
    answer: Answer
    period: ReportPeriod = Field(default_factory=ReportPeriod)
    totals: Totals = Field(default_factory=Totals)
    by_model: list[ModelLine] = Field(default_factory=list)
    recommendations: list[Recommendation] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    markdown: str = ""

    def to_protocol(self) -> dict[str, Any]:
        """The JSON object of the final event and of `GET /api/runs/{id}`."""
        return self.model_dump(mode="json", by_alias=True)
