"""Failures of a scope: how many, where, and what the failed calls and their retries cost."""

from __future__ import annotations

from apex.agents.analyses.registry import AnalysisArguments, AnalysisContext, analysis
from apex.analytics.results import ErrorRetryWaste


def _headline(waste: ErrorRetryWaste) -> str:
    return f"{waste.error_requests:,} failed, {waste.retry_requests:,} retries"


@analysis(
    "reliability",
    "Failed calls per model and error type, and their retries.",
    AnalysisArguments,
    _headline,
)
async def reliability(context: AnalysisContext, arguments: AnalysisArguments) -> ErrorRetryWaste:
    return await context.ledger.error_retry_waste(
        context.tenant_id, arguments.period, where=arguments.where(context)
    )
