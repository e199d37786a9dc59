"""Latency of a scope: its percentiles, and the slowest model and feature groups."""

from __future__ import annotations

from apex.agents.analyses.registry import AnalysisArguments, AnalysisContext, analysis
from apex.analytics.results import LatencyReport


def _headline(report: LatencyReport) -> str:
    if report.overall is None:
        return "no latency in the rows"
    return f"p95 {report.overall.p95_latency_ms:,.0f} ms over {len(report.groups)} groups"


@analysis(
    "latency",
    "p50/p95/p99 latency of the scope and of each model and feature.",
    AnalysisArguments,
    _headline,
)
async def latency(context: AnalysisContext, arguments: AnalysisArguments) -> LatencyReport:
    return await context.ledger.latency_percentiles(
        context.tenant_id, arguments.period, where=arguments.where(context)
    )
