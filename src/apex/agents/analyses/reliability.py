"""Failures of a scope: how many, where, and what the failed calls and their retries cost."""

from __future__ import annotations

from apex.agents.analyses.registry import AnalysisArguments, AnalysisContext, analysis
from apex.analytics.results import ErrorRetryWaste


@analysis("reliability", "Failed calls per model and error type, and their retries.",
          AnalysisArguments,
          lambda r: f"{r.error_requests:,} failed, {r.retry_requests:,} retries")
async def reliability(context: AnalysisContext,
                      arguments: AnalysisArguments) -> ErrorRetryWaste:
    return await context.ledger.error_retry_waste(context.tenant_id, arguments.period,
                                                  where=arguments.where(context))
