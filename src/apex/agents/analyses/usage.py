"""Spend of a scope, and its breakdown by feature, model or provider."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from apex.agents.analyses.registry import AnalysisArguments, AnalysisContext, analysis
from apex.analytics.results import ModelUsage, UsageTotals, Usd
from apex.money import format_usd


def _totals_headline(totals: UsageTotals) -> str:
    return f"{totals.requests:,} requests, {format_usd(float(totals.cost_usd))}"


@analysis(
    "usage_totals",
    "Requests, tokens, cost and errors of the period and scope.",
    AnalysisArguments,
    _totals_headline,
)
async def usage_totals(context: AnalysisContext, arguments: AnalysisArguments) -> UsageTotals:
    return await context.ledger.totals(
        context.tenant_id, arguments.period, where=arguments.where(context)
    )


def _models_headline(rows: list[ModelUsage]) -> str:
    return f"{len(rows)} model{'' if len(rows) == 1 else 's'}"


@analysis(
    "usage_by_model",
    "Spend, errors and latency per model in the period and scope.",
    AnalysisArguments,
    _models_headline,
)
async def usage_by_model(
    context: AnalysisContext, arguments: AnalysisArguments
) -> list[ModelUsage]:
    return await context.ledger.by_model(
        context.tenant_id, arguments.period, where=arguments.where(context)
    )


Dimension = Literal["feature", "model", "provider"]


class BreakdownArguments(AnalysisArguments):
    dimension: Dimension = "feature"


class BreakdownRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    cost_usd: Usd
    requests: int


class Breakdown(BaseModel):
    model_config = ConfigDict(frozen=True)

    dimension: Dimension
    cost_usd: Usd
    requests: int
    rows: list[BreakdownRow]


def _grouped(pairs: Iterable[tuple[str, Decimal, int]]) -> list[BreakdownRow]:
    sums: dict[str, tuple[Decimal, int]] = {}
    for key, cost, requests in pairs:
        before = sums.get(key, (Decimal(0), 0))
        sums[key] = (before[0] + cost, before[1] + requests)
    rows = [
        BreakdownRow(key=key, cost_usd=cost, requests=requests)
        for key, (cost, requests) in sums.items()
    ]
    return sorted(rows, key=lambda row: (-row.cost_usd, -row.requests, row.key))


def _breakdown_headline(breakdown: Breakdown) -> str:
    return f"{len(breakdown.rows)} {breakdown.dimension}s"


@analysis(
    "breakdown",
    "Spend per feature, model or provider, costliest first.",
    BreakdownArguments,
    _breakdown_headline,
)
async def breakdown(context: AnalysisContext, arguments: BreakdownArguments) -> Breakdown:
    where = arguments.where(context)
    ledger, tenant, period = context.ledger, context.tenant_id, arguments.period
    if arguments.dimension == "feature":
        features = await ledger.by_feature(tenant, period, where=where)
        rows = _grouped((f.feature, f.cost_usd, f.requests) for f in features)
    else:
        models = await ledger.by_model(tenant, period, where=where)
        rows = _grouped(
            ((m.model if arguments.dimension == "model" else m.provider), m.cost_usd, m.requests)
            for m in models
        )
    return Breakdown(
        dimension=arguments.dimension,
        cost_usd=sum((row.cost_usd for row in rows), Decimal(0)),
        requests=sum(row.requests for row in rows),
        rows=rows,
    )
