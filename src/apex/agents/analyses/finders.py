"""The six recommendation finders as analyses of the registry.

Each works on the signals the data agent read for the scope (`AnalysisContext.usage`: the token
mix, repeated prompts and prefixes, outliers, batchable traffic, failures, latency) and returns
the opportunities of its kind, each with the spend it acts on; the optimization agent ranks them
and combines their savings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from apex.agents.analyses.registry import AnalysisArguments, AnalysisContext, analysis
from apex.agents.combined import combine
from apex.agents.kinds import (
    batch_api,
    error_retry_waste,
    latency,
    model_routing,
    prompt_caching,
    token_outliers,
)
from apex.agents.opportunity import Opportunity
from apex.agents.scope import AnalysisScope, UsageData, monthly
from apex.analytics.pricing import PriceCatalog
from apex.money import format_usd

Finder = Callable[[UsageData, AnalysisScope, PriceCatalog], list[Opportunity]]
FINDERS: dict[str, Finder] = {
    "find_model_routing": model_routing.find,
    "find_prompt_caching": prompt_caching.find,
    "find_batch_api": batch_api.find,
    "find_token_outliers": token_outliers.find,
    "find_error_retry_waste": error_retry_waste.find,
    "find_latency_outliers": latency.find,
}
_DESCRIPTIONS = {
    "find_model_routing": "Traffic a cheaper model of at most one tier down could serve.",
    "find_prompt_caching": "Repeated prompts and shared prefixes a cache would serve.",
    "find_batch_api": "Traffic no user waits for, at batch prices.",
    "find_token_outliers": "Calls far above their group's input or output tokens.",
    "find_error_retry_waste": "Spend on failed calls and their retries.",
    "find_latency_outliers": "The slowest tails by model and feature.",
}


@dataclass(frozen=True, slots=True)
class Found:
    """One finder's opportunities, and what they save together over a month."""

    opportunities: list[Opportunity]
    monthly_savings_usd: Decimal


def _summary(found: Found) -> str:
    return (
        f"{len(found.opportunities)} found, {format_usd(float(found.monthly_savings_usd))}/month "
        "together"
    )


def _register(name: str, finder: Finder) -> None:
    async def find(context: AnalysisContext, arguments: AnalysisArguments) -> Found:
        if context.usage is None:
            raise ValueError("the signals behind the savings were not read")
        scope = AnalysisScope(
            tenant_id=context.tenant_id, period=arguments.period, where=arguments.where(context)
        )
        opportunities = finder(context.usage, scope, context.catalog)
        together = combine(opportunities).period_savings_usd
        return Found(opportunities, monthly(together, arguments.period))

    run: Callable[[AnalysisContext, AnalysisArguments], Awaitable[Found]] = find
    analysis(name, _DESCRIPTIONS[name], AnalysisArguments, _summary, offered=False)(run)


for _name, _finder in FINDERS.items():
    _register(_name, _finder)
