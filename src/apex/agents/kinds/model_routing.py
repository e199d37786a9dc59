"""`model_routing`: traffic on an expensive model whose requests look routable to a cheaper one.

Signal: a (model, feature) group of at least `MIN_REQUESTS` calls on a mid or frontier chat
model, failing at most `MAX_ERROR_RATE` of them, whose answers are short (p95 output at most
`SHORT_OUTPUT_P95` tokens) or whose feature is classification/extraction-like with a median
output of at most `ROUTABLE_MEDIAN_OUTPUT`.

Quality floor: short answers without reasoning tokens allow the `small` tier, anything else
`mid` (`allowed_tier`); the group goes down one tier at most and never below what its signals
allow (`apex.analytics.pricing.tier_floor`).

Candidates: `PriceCatalog.cheaper_alternatives` of the same provider at or above that floor,
at most `MAX_CANDIDATES`, each pricing the group's own tokens: uncached and cached input,
output, and reasoning tokens at the candidate's reasoning price when the catalog marks it a
reasoning model (an entry with a reasoning price), billed as output tokens when it is not. The
cheapest candidate is recommended; the evidence lists every candidate with its cost. The saving
is the group's actual spend minus the recommended candidate's cost.

Confidence = rows x steadiness x signal x reliability x drop, where rows =
`support(requests, 100)`, steadiness = `steadiness(p95, p50 output tokens)`, signal = 1 for
short answers and 0.8 for a feature name alone, reliability = 1 - error rate, drop = 0.85 when
the recommended model is a tier lower and 1 otherwise. Risk: one warning each for a tier drop,
a feature-name-only signal, an error rate above 5%, and reasoning tokens in the group.
"""

from __future__ import annotations

from apex.agents.kinds.confidence import bounded, risk_of, steadiness, support
from apex.agents.opportunity import Opportunity, group_spend
from apex.agents.scope import AnalysisScope, UsageData, micro_usd
from apex.analytics.pricing import (
    TIER_RANK,
    CheaperModel,
    ModelPrice,
    PriceCatalog,
    Tier,
    tier_floor,
)
from apex.analytics.results import ModelFeatureUsage

SHORT_OUTPUT_P95 = 64
ROUTABLE_MEDIAN_OUTPUT = 120
MAX_ERROR_RATE = 0.10
MIN_REQUESTS = 50
MAX_CANDIDATES = 5
ROUTABLE_FEATURES = (
    "classif",
    "extract",
    "tagging",
    "moderation",
    "sentiment",
    "routing",
    "label",
    "intent",
    "detect",
)


def short_answers(group: ModelFeatureUsage) -> bool:
    return group.p95_output_tokens <= SHORT_OUTPUT_P95


def routable(group: ModelFeatureUsage) -> bool:
    """The group's answers look like a smaller model could give them."""
    like = any(cue in group.feature.lower() for cue in ROUTABLE_FEATURES)
    return short_answers(group) or (like and group.p50_output_tokens <= ROUTABLE_MEDIAN_OUTPUT)


def allowed_tier(group: ModelFeatureUsage) -> Tier:
    """The lowest tier the group's own signals allow: `small` for short answers that spend no
    reasoning tokens, `mid` for anything else."""
    return "small" if short_answers(group) and not group.reasoning_tokens else "mid"


def candidates(
    group: ModelFeatureUsage, price: ModelPrice, catalog: PriceCatalog
) -> list[CheaperModel]:
    """The catalog's cheaper models for the group's tokens, at or above its quality floor."""
    return catalog.cheaper_alternatives(
        price.id,
        price.provider,
        input_tokens=group.input_tokens,
        output_tokens=group.output_tokens,
        cached_input_tokens=group.cached_input_tokens,
        reasoning_tokens=group.reasoning_tokens,
        min_tier=tier_floor(price.tier, allowed_tier(group)),
        same_provider=True,
        limit=MAX_CANDIDATES,
    )


def find(data: UsageData, scope: AnalysisScope, catalog: PriceCatalog) -> list[Opportunity]:
    found: list[Opportunity] = []
    for group in data.mix:
        if group.requests < MIN_REQUESTS:
            continue
        price = catalog.resolve(group.model, group.provider)
        if price is None or price.kind != "chat" or price.tier == "small":
            continue
        error_rate = group.errors / group.requests
        if not routable(group) or error_rate > MAX_ERROR_RATE:
            continue
        options = [
            c for c in candidates(group, price, catalog) if c.alternative_cost < group.cost_usd
        ]
        if options:
            found.append(_opportunity(data, group, price, options))
    return found


def _opportunity(
    data: UsageData, group: ModelFeatureUsage, price: ModelPrice, options: list[CheaperModel]
) -> Opportunity:
    best = options[0]
    savings = group.cost_usd - best.alternative_cost
    short = short_answers(group)
    error_rate = group.errors / group.requests
    drop = TIER_RANK[price.tier] - TIER_RANK[best.model.tier]
    confidence = (
        support(group.requests, 100)
        * steadiness(group.p95_output_tokens, group.p50_output_tokens)
        * (1.0 if short else 0.8)
        * (1 - error_rate)
        * (0.85 if drop > 0 else 1.0)
    )
    warnings = sum((drop > 0, not short, error_rate > 0.05, group.reasoning_tokens > 0))
    alternative = best.model
    return Opportunity(
        kind="model_routing",
        key=f"{group.model}-{group.feature}",
        title=f"Route {group.feature or 'untagged'} traffic from {group.model} to {alternative.id}",
        period_savings_usd=savings,
        requests=group.requests,
        confidence=bounded(confidence),
        risk=risk_of(warnings),
        spend=group_spend(data, group.provider, group.model, group.feature, savings),
        evidence={
            "provider": group.provider,
            "model": group.model,
            "feature": group.feature,
            "current_tier": price.tier,
            "min_tier": tier_floor(price.tier, allowed_tier(group)),
            "alternative_model": alternative.id,
            "alternative_tier": alternative.tier,
            "tier_drop": max(drop, 0),
            "current_cost_usd": micro_usd(group.cost_usd),
            "alternative_cost_usd": micro_usd(best.alternative_cost),
            "candidates": [
                {
                    "model": c.model.id,
                    "tier": c.model.tier,
                    "cost_usd": micro_usd(c.alternative_cost),
                    "savings_usd": micro_usd(group.cost_usd - c.alternative_cost),
                    "reasoning_priced_as": "reasoning" if c.model.reasoning_model else "output",
                }
                for c in options
            ],
            "p50_output_tokens": group.p50_output_tokens,
            "p95_output_tokens": group.p95_output_tokens,
            "p50_input_tokens": group.p50_input_tokens,
            "reasoning_tokens": group.reasoning_tokens,
            "error_rate": round(error_rate, 4),
            "price_catalog": {
                "model_input_per_mtok": str(price.input),
                "model_output_per_mtok": str(price.output),
                "alternative_input_per_mtok": str(alternative.input),
                "alternative_output_per_mtok": str(alternative.output),
            },
        },
    )
