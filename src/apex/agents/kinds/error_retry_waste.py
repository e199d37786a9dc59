"""`error_retry_waste`: spend on failed calls, for models that fail far more than they should.

A model qualifies when at least `MIN_ERROR_RATE` of its calls fail. The saving is what its
failed calls cost (their input tokens are billed, their answers are lost), measured per model
and so spread over its feature groups by spend; the retries they caused are evidence of the
extra load. The fix falls back to the model the caller already runs that fails least
(`reliable_fallback`), when there is one.

Confidence = rows x transient, where rows = `support(failed calls, 30)` and transient = 0.5 +
0.5 x the share of failures that are transient (timeouts, rate limits, server errors: what a
fallback or a backoff avoids; a malformed request fails on any model). Risk: one warning when
no fallback model qualifies, one when fewer than half of the failures are transient.
"""

from __future__ import annotations

from decimal import Decimal

from apex.agents.kinds.confidence import bounded, risk_of, support
from apex.agents.kinds.fallbacks import fallback_evidence, reliable_fallback
from apex.agents.opportunity import Opportunity, model_spend
from apex.agents.scope import AnalysisScope, UsageData, micro_usd
from apex.analytics.pricing import PriceCatalog

MIN_ERROR_RATE = 0.08
MIN_ERRORS = 10
TRANSIENT = (
    "timeout",
    "timed_out",
    "rate",
    "429",
    "overload",
    "server",
    "500",
    "502",
    "503",
    "504",
    "unavailable",
    "connection",
)


def transient(error_type: str) -> bool:
    return any(cue in error_type.lower() for cue in TRANSIENT)


def find(data: UsageData, scope: AnalysisScope, catalog: PriceCatalog) -> list[Opportunity]:
    if data.errors is None:
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
        failed = sum(g.requests for g in groups)
        share = (
            sum(g.requests for g in groups if transient(g.error_type)) / failed if failed else 0.0
        )
        error_rate = model.errors / model.requests
        fallback = reliable_fallback(
            data, catalog, model.provider, model.model, below_error_rate=error_rate / 2
        )
        found.append(
            Opportunity(
                kind="error_retry_waste",
                key=model.model,
                title=f"Stop paying for failed calls on {model.model} "
                f"({100 * error_rate:.1f}% fail)",
                period_savings_usd=cost,
                requests=model.errors,
                confidence=bounded(support(model.errors, 30) * (0.5 + 0.5 * share)),
                risk=risk_of(sum((fallback is None, share < 0.5))),
                spend=model_spend(data, model.provider, model.model, cost),
                evidence={
                    "provider": model.provider,
                    "model": model.model,
                    "error_rate": round(error_rate, 4),
                    "failed_requests": model.errors,
                    "failed_cost_usd": micro_usd(cost),
                    "errors_by_type": {g.error_type or "unknown": g.requests for g in groups},
                    "transient_share": round(share, 4),
                    "retries": sum(r.retries for r in retries),
                    "recovered_retries": sum(r.recovered for r in retries),
                    "retry_cost_usd": micro_usd(sum((r.cost_usd for r in retries), Decimal(0))),
                    "retry_window_s": data.errors.retry_window_s,
                    **fallback_evidence(fallback),
                },
            )
        )
    return found
