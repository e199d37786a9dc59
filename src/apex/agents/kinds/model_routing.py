"""`model_routing`: traffic on an expensive model whose requests look routable to a cheaper one.

A (model, feature) group qualifies when its answers are short (p95 output at most
`SHORT_OUTPUT_P95` tokens) or it is a classification/extraction-like feature with a small median
output, it fails rarely, and it runs on a mid or frontier model. The saving is the group's
actual spend minus the same tokens (input, cached input, output, reasoning) priced on the
cheapest chat model of the same provider.
"""

from __future__ import annotations

from apex.agents.opportunity import Opportunity
from apex.agents.scope import AnalysisScope, UsageData, usd
from apex.analytics.pricing import PriceCatalog

SHORT_OUTPUT_P95 = 64
ROUTABLE_MEDIAN_OUTPUT = 120
MAX_ERROR_RATE = 0.10
MIN_REQUESTS = 50
ROUTABLE_FEATURES = ("classif", "extract", "tagging", "moderation", "sentiment", "routing",
                     "label", "intent", "detect")


def find(data: UsageData, scope: AnalysisScope, catalog: PriceCatalog) -> list[Opportunity]:
    found: list[Opportunity] = []
    for group in data.mix:
        if not scope.covers(group.feature) or group.requests < MIN_REQUESTS:
            continue
        price = catalog.resolve(group.model, group.provider)
        if price is None or price.kind != "chat" or price.tier == "small":
            continue
        short = group.p95_output_tokens <= SHORT_OUTPUT_P95
        like = any(cue in group.feature.lower() for cue in ROUTABLE_FEATURES)
        if not (short or (like and group.p50_output_tokens <= ROUTABLE_MEDIAN_OUTPUT)):
            continue
        if group.errors / group.requests > MAX_ERROR_RATE:
            continue
        candidates = [c for c in catalog.models if c.provider == price.provider
                      and c.kind == "chat" and c.id != price.id]
        costs = sorted(((c.cost(input_tokens=group.input_tokens,
                                output_tokens=group.output_tokens,
                                cached_input_tokens=group.cached_input_tokens,
                                reasoning_tokens=group.reasoning_tokens), c.id, c)
                        for c in candidates), key=lambda item: (item[0], item[1]))
        if not costs:
            continue
        alternative_cost, _, alternative = costs[0]
        savings = group.cost_usd - alternative_cost
        if savings <= 0:
            continue
        found.append(Opportunity(
            kind="model_routing", key=f"{group.model}-{group.feature}",
            title=f"Route {group.feature or 'untagged'} traffic from {group.model} to "
                  f"{alternative.id}",
            period_savings_usd=savings, requests=group.requests,
            confidence=0.8 if short else 0.6, risk="low" if short else "medium",
            evidence={
                "provider": group.provider, "model": group.model, "feature": group.feature,
                "alternative_model": alternative.id, "alternative_tier": alternative.tier,
                "current_cost_usd": usd(group.cost_usd),
                "alternative_cost_usd": usd(alternative_cost),
                "p50_output_tokens": group.p50_output_tokens,
                "p95_output_tokens": group.p95_output_tokens,
                "p50_input_tokens": group.p50_input_tokens,
                "error_rate": round(group.errors / group.requests, 4),
                "price_catalog": {"model_input_per_mtok": str(price.input),
                                  "model_output_per_mtok": str(price.output),
                                  "alternative_input_per_mtok": str(alternative.input),
                                  "alternative_output_per_mtok": str(alternative.output)},
            }))
    return found

