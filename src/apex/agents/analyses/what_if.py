"""What the scope's rows would have cost on another model: the same tokens at its prices.

Each (provider, model, feature) group's input, cached-input, output and reasoning tokens are
priced on the target with the catalog's own arithmetic (`ModelPrice.cost`), so cached reads and
reasoning tokens are priced apart as on an invoice. Without a named target, the target is the
cheapest model of the same kind and provider that the scope's costliest model may move to: one
tier down at most (`tier_floor`), the bar model routing uses.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from apex.agents.analyses.registry import AnalysisArguments, AnalysisContext, analysis
from apex.analytics.pricing import ModelPrice, PriceCatalog, tier_floor
from apex.analytics.results import ModelFeatureUsage, Usd
from apex.money import format_usd


class WhatIfArguments(AnalysisArguments):
    target_model: str | None = Field(default=None, max_length=120)


class WhatIf(BaseModel):
    model_config = ConfigDict(frozen=True)

    target_model: str | None
    target_provider: str | None
    requests: int
    current_cost_usd: Usd
    projected_cost_usd: Usd | None
    # rows already on the target, or whose tokens could not be priced there
    unchanged_requests: int


def _target(
    catalog: PriceCatalog, named: str | None, groups: list[ModelFeatureUsage]
) -> ModelPrice | None:
    if named:
        return catalog.resolve(named)
    if not groups:
        return None
    costliest = max(groups, key=lambda g: (g.cost_usd, g.requests))
    current = catalog.resolve(costliest.model, costliest.provider)
    if current is None:
        return None
    options = catalog.cheaper_alternatives(
        costliest.model,
        costliest.provider,
        input_tokens=sum(g.input_tokens for g in groups),
        output_tokens=sum(g.output_tokens for g in groups),
        cached_input_tokens=sum(g.cached_input_tokens for g in groups),
        reasoning_tokens=sum(g.reasoning_tokens for g in groups),
        min_tier=tier_floor(current.tier),
        same_provider=True,
        limit=1,
    )
    return options[0].model if options else None


def _headline(what_if: WhatIf) -> str:
    if what_if.projected_cost_usd is None:
        return "no target model to price"
    return (
        f"{format_usd(float(what_if.current_cost_usd))} -> "
        f"{format_usd(float(what_if.projected_cost_usd))} on {what_if.target_model}"
    )


@analysis(
    "what_if",
    "The same rows' tokens priced on a target model (or the cheapest one a tier down at most).",
    WhatIfArguments,
    _headline,
)
async def what_if(context: AnalysisContext, arguments: WhatIfArguments) -> WhatIf:
    groups = await context.ledger.by_model_feature(
        context.tenant_id, arguments.period, where=arguments.where(context)
    )
    target = _target(context.catalog, arguments.target_model, groups)
    current = sum((g.cost_usd for g in groups), Decimal(0))
    requests = sum(g.requests for g in groups)
    if target is None:
        return WhatIf(
            target_model=arguments.target_model,
            target_provider=None,
            requests=requests,
            current_cost_usd=current,
            projected_cost_usd=None,
            unchanged_requests=requests,
        )
    projected = Decimal(0)
    unchanged = 0
    for group in groups:
        if group.model == target.id and group.provider == target.provider:
            projected += group.cost_usd
            unchanged += group.requests
            continue
        projected += target.cost(
            input_tokens=group.input_tokens,
            output_tokens=group.output_tokens,
            cached_input_tokens=group.cached_input_tokens,
            reasoning_tokens=group.reasoning_tokens,
        )
    return WhatIf(
        target_model=target.id,
        target_provider=target.provider,
        requests=requests,
        current_cost_usd=current,
        projected_cost_usd=projected,
        unchanged_requests=unchanged,
    )
