"""A fallback for a model that fails or is slow, chosen among the models the caller already runs.

A model the caller already calls has its keys, quotas and data agreements in place, so falling
back to it is one line of router config. It must be another chat model no more than one tier
below the failing one (`tier_floor`); `reliable_fallback` takes the one that fails least,
`fast_fallback` the one with the lowest p95 latency under a limit.
"""

from __future__ import annotations

from apex.agents.scope import UsageData
from apex.analytics.pricing import TIER_RANK, PriceCatalog, tier_floor
from apex.analytics.results import ModelUsage


def _eligible(
    data: UsageData, catalog: PriceCatalog, provider: str, model: str
) -> list[ModelUsage]:
    current = catalog.resolve(model, provider)
    if current is None or current.kind != "chat":
        return []
    floor = TIER_RANK[tier_floor(current.tier)]
    eligible = []
    for usage in data.by_model:
        if (usage.provider, usage.model) == (provider, model) or not usage.requests:
            continue
        price = catalog.resolve(usage.model, usage.provider)
        if price is not None and price.kind == "chat" and TIER_RANK[price.tier] >= floor:
            eligible.append(usage)
    return eligible


def reliable_fallback(
    data: UsageData, catalog: PriceCatalog, provider: str, model: str, *, below_error_rate: float
) -> ModelUsage | None:
    """The eligible model with the lowest error rate, under `below_error_rate`."""
    options = [
        u
        for u in _eligible(data, catalog, provider, model)
        if u.errors / u.requests < below_error_rate
    ]
    return min(options, key=lambda u: (u.errors / u.requests, u.provider, u.model), default=None)


def fast_fallback(
    data: UsageData, catalog: PriceCatalog, provider: str, model: str, *, below_p95_ms: float
) -> ModelUsage | None:
    """The eligible model with the lowest p95 latency, under `below_p95_ms`."""
    options = [
        u
        for u in _eligible(data, catalog, provider, model)
        if u.p95_latency_ms is not None and u.p95_latency_ms < below_p95_ms
    ]
    return min(options, key=lambda u: (u.p95_latency_ms or 0.0, u.provider, u.model), default=None)


def fallback_evidence(usage: ModelUsage | None) -> dict[str, object]:
    """The fallback's names and record, for a recommendation's evidence ({} without one)."""
    if usage is None:
        return {}
    return {
        "fallback_provider": usage.provider,
        "fallback_model": usage.model,
        "fallback_error_rate": round(usage.errors / usage.requests, 4),
        "fallback_p95_latency_ms": usage.p95_latency_ms,
    }
