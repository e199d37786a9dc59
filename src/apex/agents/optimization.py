"""The optimization agent: every recommendation kind of PRODUCT.md, computed from the rows read.

Each kind (`apex.agents.kinds`) is a finder analysis of the registry (`analyses/finders.py`),
run as a tool, so the events show what was computed and what it found; a question about one
kind runs only that kind's finder. Savings are exact over the
period, then scaled to 30 days; shares are of the scope's requests and spend. Recommendations
are ranked by monthly savings, latency ones (which save time, not money) after them. A money
saving under `MIN_SHARE_OF_SPEND` of the scope's spend is noise next to the rest and is left
out. What the recommendations save together is not their sum: they are applied one after
another over the same spend (`apex.agents.combined`), so an overlap counts once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apex.agents.analyses import AnalysisArguments, AnalysisContext, run_analysis
from apex.agents.analyses.finders import FINDERS
from apex.agents.combined import combine
from apex.agents.opportunity import Opportunity
from apex.agents.report import unpriced_note
from apex.agents.scope import AnalysisScope
from apex.execution.workflow import AgentScope
from apex.money import format_usd

MIN_SHARE_OF_SPEND = Decimal("0.001")


@dataclass(frozen=True, slots=True)
class Optimization:
    """The report's recommendations, and what they save together over the period: applied
    one after another over the same spend, overlaps counted once (exact, not rounded)."""

    recommendations: list[dict[str, Any]]
    achievable_period_savings_usd: Decimal


def selected(finders: Sequence[str] | None) -> list[str]:
    """The finders to run: all of `FINDERS`, or the named ones in `FINDERS`' order."""
    if finders is None:
        return list(FINDERS)
    unknown = sorted(set(finders) - set(FINDERS))
    if unknown:
        raise ValueError(f"unknown finders: {', '.join(unknown)}")
    return [name for name in FINDERS if name in finders]


class OptimizationAgent:
    name = "optimization"
    task = "Compute each kind of saving from your rows and the price catalog"

    async def run(
        self,
        agent: AgentScope,
        context: AnalysisContext,
        scope: AnalysisScope,
        *,
        finders: Sequence[str] | None = None,
    ) -> Optimization:
        """`context.usage` holds the signals read for `scope`."""
        assert context.usage is not None
        chosen = selected(finders)
        totals = context.usage.totals
        await agent.think(
            f"Pricing alternatives against catalog {context.catalog.version} for "
            f"{totals.requests:,} calls costing {format_usd(float(totals.cost_usd))}"
            f"{unpriced_note(totals.unpriced_requests)}."
        )
        arguments = AnalysisArguments.model_validate(
            {
                "from": scope.period.start,
                "to": scope.period.end,
                "models": list(scope.where.models),
                "providers": list(scope.where.providers),
                "features": list(scope.where.features),
            }
        )
        found: list[Opportunity] = []
        for name in chosen:
            result = await run_analysis(agent, context, name, arguments)
            if result.ok:
                found.extend(result.result.opportunities)
            else:
                await agent.think(
                    f"{name.replace('_', ' ')} failed ({result.error}); left out of the report."
                )
        floor = totals.cost_usd * MIN_SHARE_OF_SPEND
        found = [o for o in found if o.kind == "latency" or o.period_savings_usd >= floor]
        found.sort(
            key=lambda o: (o.period_savings_usd <= 0, -o.period_savings_usd, -o.requests, o.id)
        )
        recommendations = [
            o.to_report(scope, total_cost=totals.cost_usd, total_requests=totals.requests)
            for o in found
        ]
        together = combine(found).period_savings_usd
        monthly = float(scope.monthly(together))
        added = float(scope.monthly(sum((o.period_savings_usd for o in found), Decimal(0))))
        overlap = (
            f"; added up without removing their overlaps they would claim {format_usd(added)}"
            if format_usd(added) != format_usd(monthly)
            else ""
        )
        await agent.think(
            f"{len(recommendations)} recommendations; applied one after another "
            f"over the same spend they save {format_usd(monthly)}/month together"
            f"{overlap}."
        )
        agent.result_summary = (
            f"{len(recommendations)} recommendations, {format_usd(monthly)}/month combined"
        )
        return Optimization(recommendations, together)
