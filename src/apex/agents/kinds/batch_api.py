"""`batch_api`: traffic no user waits for (batch-like feature or tag names, or no end user
off-hours), priced with the provider's batch discount instead of interactive prices.

The saving is the batchable calls' spend times the model's batch discount; it acts on the
group's (provider, model, feature) spend.

Confidence = rows x naming, where rows = `support(requests, 50)` and naming = 0.6 + 0.4 x the
share of the calls whose feature or tags name them as batch work (calls found only by being
off-hours without an end user are a weaker sign). Risk: one warning when fewer than
`TAGGED_SHARE` of the calls are named as batch work, another when fewer than half are.
"""

from __future__ import annotations

from apex.agents.kinds.confidence import bounded, risk_of, support
from apex.agents.opportunity import Opportunity, group_spend
from apex.agents.scope import AnalysisScope, UsageData, micro_usd
from apex.analytics.pricing import PriceCatalog

MIN_REQUESTS = 20
TAGGED_SHARE = 0.9


def find(data: UsageData, scope: AnalysisScope, catalog: PriceCatalog) -> list[Opportunity]:
    found: list[Opportunity] = []
    for group in data.batchable.groups if data.batchable else []:
        if group.requests < MIN_REQUESTS:
            continue
        price = catalog.resolve(group.model, group.provider)
        if price is None or price.batch_discount <= 0:
            continue
        savings = group.cost_usd * price.batch_discount
        if savings <= 0:
            continue
        tagged = group.tagged_requests / group.requests
        found.append(
            Opportunity(
                kind="batch_api",
                key=f"{group.model}-{group.feature}",
                title=f"Move {group.feature or 'off-hours'} traffic on {group.model} to the batch API",
                period_savings_usd=savings,
                requests=group.requests,
                confidence=bounded(support(group.requests, 50) * (0.6 + 0.4 * tagged)),
                risk=risk_of(sum((tagged < TAGGED_SHARE, tagged < 0.5))),
                spend=group_spend(data, group.provider, group.model, group.feature, savings),
                evidence={
                    "provider": group.provider,
                    "model": group.model,
                    "feature": group.feature,
                    "batch_discount": str(price.batch_discount),
                    "cost_usd": micro_usd(group.cost_usd),
                    "tagged_requests": group.tagged_requests,
                    "tagged_share": round(tagged, 4),
                    "off_hours_requests": group.off_hours_requests,
                    "batch_keywords": list(data.batchable.keywords) if data.batchable else [],
                },
            )
        )
    return found
