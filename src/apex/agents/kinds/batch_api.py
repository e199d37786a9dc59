"""`batch_api`: traffic no user waits for (batch-like feature or tag names, or no end user
off-hours), priced with the provider's batch discount instead of interactive prices."""

from __future__ import annotations

from apex.agents.opportunity import Opportunity
from apex.agents.scope import AnalysisScope, UsageData, usd
from apex.analytics.pricing import PriceCatalog

MIN_REQUESTS = 20


def find(data: UsageData, scope: AnalysisScope, catalog: PriceCatalog) -> list[Opportunity]:
    found: list[Opportunity] = []
    for group in data.batchable.groups if data.batchable else []:
        if not scope.covers(group.feature) or group.requests < MIN_REQUESTS:
            continue
        price = catalog.resolve(group.model, group.provider)
        if price is None or price.batch_discount <= 0:
            continue
        savings = group.cost_usd * price.batch_discount
        if savings <= 0:
            continue
        tagged = group.tagged_requests / group.requests
        found.append(Opportunity(
            kind="batch_api", key=f"{group.model}-{group.feature}",
            title=f"Move {group.feature or 'off-hours'} traffic on {group.model} to the batch API",
            period_savings_usd=savings, requests=group.requests,
            confidence=0.9 if tagged >= 0.9 else 0.6, risk="low" if tagged >= 0.9 else "medium",
            evidence={
                "provider": group.provider, "model": group.model, "feature": group.feature,
                "batch_discount": str(price.batch_discount),
                "cost_usd": usd(group.cost_usd),
                "tagged_requests": group.tagged_requests,
                "off_hours_requests": group.off_hours_requests,
                "batch_keywords": list(data.batchable.keywords) if data.batchable else [],
            }))
    return found

