"""Models side by side over the same period and features: volume, spend, latency, errors."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from apex.agents.analyses.registry import AnalysisArguments, AnalysisContext, analysis
from apex.analytics.results import Usd


class ComparedModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    requests: int
    cost_usd: Usd
    errors: int
    p95_latency_ms: float | None


class Comparison(BaseModel):
    model_config = ConfigDict(frozen=True)

    models: list[ComparedModel]


def _headline(comparison: Comparison) -> str:
    return f"{len(comparison.models)} models compared"


@analysis(
    "compare_models",
    "Requests, spend, p95 latency and errors of each named model.",
    AnalysisArguments,
    _headline,
)
async def compare_models(context: AnalysisContext, arguments: AnalysisArguments) -> Comparison:
    rows = await context.ledger.by_model(
        context.tenant_id, arguments.period, where=arguments.where(context)
    )
    compared = []
    for name in arguments.models:
        mine = [row for row in rows if row.model == name]
        latency = mine[0].p95_latency_ms if len(mine) == 1 else None
        if len(mine) > 1:
            single = await context.ledger.latency_percentiles(
                context.tenant_id,
                arguments.period,
                where=replace(arguments.where(context), models=(name,)),
            )
            latency = single.overall.p95_latency_ms if single.overall else None
        compared.append(
            ComparedModel(
                model=name,
                requests=sum(r.requests for r in mine),
                cost_usd=sum((r.cost_usd for r in mine), Decimal(0)),
                errors=sum(r.errors for r in mine),
                p95_latency_ms=latency,
            )
        )
    return Comparison(models=compared)
