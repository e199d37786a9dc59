"""The optimization agent: every recommendation kind of PRODUCT.md, computed from the rows read.

Each kind (`apex.agents.kinds`) is a tool, so the events show what was computed and what it
found. Savings are exact over the period, then scaled to 30 days; shares are of the scope's
requests and spend. Recommendations are ranked by monthly savings, latency ones (which save
time, not money) after them. A money saving under `MIN_SHARE_OF_SPEND` of the scope's spend is
noise next to the rest and is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from apex.agents.kinds import (
    batch_api,
    error_retry_waste,
    latency,
    model_routing,
    prompt_caching,
    token_outliers,
)
from apex.agents.opportunity import Opportunity
from apex.agents.scope import AnalysisScope, UsageData, scoped_totals
from apex.analytics.pricing import PriceCatalog
from apex.execution.workflow import AgentScope
from apex.llm.templates import usd as money

Finder = Callable[[UsageData, AnalysisScope, PriceCatalog], list[Opportunity]]
FINDERS: dict[str, Finder] = {
    "find_model_routing": model_routing.find,
    "find_prompt_caching": prompt_caching.find,
    "find_batch_api": batch_api.find,
    "find_token_outliers": token_outliers.find,
    "find_error_retry_waste": error_retry_waste.find,
    "find_latency_outliers": latency.find,
}


MIN_SHARE_OF_SPEND = Decimal("0.001")


class OptimizationAgent:
    name = "optimization"
    task = "Compute each kind of saving from your rows and the price catalog"

    async def run(self, agent: AgentScope, scope: AnalysisScope, data: UsageData,
                  catalog: PriceCatalog) -> list[dict[str, Any]]:
        totals = scoped_totals(data, scope)
        await agent.think(f"Pricing alternatives against catalog {catalog.version} for "
                          f"{totals.requests:,} calls costing {money(float(totals.cost_usd))}.")
        for name, finder in FINDERS.items():
            agent.context.tools.register(
                name, _tool(finder, data, scope, catalog), include_result=False,
                description=(finder.__module__ or "").rsplit(".", 1)[-1],
                summarize=_summary(scope))
        found: list[Opportunity] = []
        for name in FINDERS:
            result = await agent.call(name, scope.period_arguments())
            if result.ok:
                found.extend(result.result)
            else:
                await agent.think(f"{name.replace('_', ' ')} failed ({result.error}); "
                                  "left out of the report.")
        floor = totals.cost_usd * MIN_SHARE_OF_SPEND
        found = [o for o in found if o.kind == "latency" or o.period_savings_usd >= floor]
        found.sort(key=lambda o: (o.period_savings_usd <= 0, -o.period_savings_usd,
                                  -o.requests, o.id))
        recommendations = [o.to_report(scope, total_cost=totals.cost_usd,
                                       total_requests=totals.requests) for o in found]
        monthly = sum(item["monthly_savings_usd"] for item in recommendations)
        await agent.think(f"{len(recommendations)} recommendations worth about "
                          f"{money(monthly)}/month in total (they overlap in places).")
        agent.result_summary = f"{len(recommendations)} recommendations, {money(monthly)}/month"
        return recommendations


def _summary(scope: AnalysisScope) -> Callable[[list[Opportunity]], str]:
    def summary(found: list[Opportunity]) -> str:
        monthly = sum(scope.monthly(o.period_savings_usd) for o in found)
        return f"{len(found)} found, {money(float(monthly))}/month"

    return summary


def _tool(finder: Finder, data: UsageData, scope: AnalysisScope,
          catalog: PriceCatalog) -> Callable[..., Any]:
    async def tool(**_period: Any) -> list[Opportunity]:
        return finder(data, scope, catalog)

    return tool
