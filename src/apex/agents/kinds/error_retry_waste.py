"""`error_retry_waste`: spend on failed calls, for models that fail far more than they should.

A model qualifies when at least `MIN_ERROR_RATE` of its calls fail. The saving is what its
failed calls cost (their input tokens are billed, their answers are lost); the retries they
caused are evidence of the extra load.
"""

from __future__ import annotations

from decimal import Decimal

from apex.agents.opportunity import Opportunity
from apex.agents.scope import AnalysisScope, UsageData, usd
from apex.analytics.pricing import PriceCatalog

MIN_ERROR_RATE = 0.08
MIN_ERRORS = 10


def find(data: UsageData, scope: AnalysisScope, catalog: PriceCatalog) -> list[Opportunity]:
    if scope.features or data.errors is None:
        return []
    found: list[Opportunity] = []
    for model in data.by_model:
        if model.errors < MIN_ERRORS or model.errors / model.requests < MIN_ERROR_RATE:
            continue
        key = (model.provider, model.model)
        groups = [g for g in data.errors.errors if (g.provider, g.model) == key]
        retries = [r for r in data.errors.retries if (r.provider, r.model) == key]
        cost = sum((g.cost_usd for g in groups), Decimal(0))
        if cost <= 0:
            continue
        found.append(Opportunity(
            kind="error_retry_waste", key=model.model,
            title=f"Stop paying for failed calls on {model.model} "
                  f"({100 * model.errors / model.requests:.1f}% fail)",
            period_savings_usd=cost, requests=model.errors, confidence=0.7, risk="medium",
            evidence={
                "provider": model.provider, "model": model.model,
                "error_rate": round(model.errors / model.requests, 4),
                "failed_requests": model.errors, "failed_cost_usd": usd(cost),
                "errors_by_type": {g.error_type or "unknown": g.requests for g in groups},
                "retries": sum(r.retries for r in retries),
                "recovered_retries": sum(r.recovered for r in retries),
                "retry_cost_usd": usd(sum((r.cost_usd for r in retries), Decimal(0))),
                "retry_window_s": data.errors.retry_window_s,
            }))
    return found
