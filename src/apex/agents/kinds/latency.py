"""`latency`: p95/p99 outliers by model and feature, and time to first token where known.

A (model, feature) group qualifies when its p99 is at least `MIN_P99_MS` and `TAIL_RATIO` times
its median: a slow tail rather than a slow model; the `MAX_LISTED` slowest tails (by p99) are
kept. It saves time, not money, so its
`monthly_savings_usd` is 0; the evidence carries the percentiles.
"""

from __future__ import annotations

from decimal import Decimal

from apex.agents.opportunity import Opportunity
from apex.agents.scope import AnalysisScope, UsageData
from apex.analytics.pricing import PriceCatalog

MIN_P99_MS = 10_000.0
TAIL_RATIO = 3.0
MIN_REQUESTS = 20
MAX_LISTED = 3


def find(data: UsageData, scope: AnalysisScope, catalog: PriceCatalog) -> list[Opportunity]:
    found: list[Opportunity] = []
    for group in data.latency.groups if data.latency else []:
        if not scope.covers(group.feature) or group.requests < MIN_REQUESTS:
            continue
        if group.p99_latency_ms < MIN_P99_MS or \
                group.p99_latency_ms < TAIL_RATIO * group.p50_latency_ms:
            continue
        evidence: dict[str, object] = {
            "provider": group.provider, "model": group.model, "feature": group.feature,
            "requests": group.requests, "p50_latency_ms": group.p50_latency_ms,
            "p95_latency_ms": group.p95_latency_ms, "p99_latency_ms": group.p99_latency_ms,
            "max_latency_ms": group.max_latency_ms,
            "timeout_suggestion_ms": round(max(group.p95_latency_ms, 2 * group.p50_latency_ms)),
        }
        if group.ttft_requests:
            evidence.update(p50_ttft_ms=group.p50_ttft_ms, p95_ttft_ms=group.p95_ttft_ms)
        found.append(Opportunity(
            kind="latency", key=f"{group.model}-{group.feature}",
            title=f"Cut the slow tail of {group.feature or 'untagged'} calls on {group.model} "
                  f"(p99 {group.p99_latency_ms / 1000:,.1f} s)",
            period_savings_usd=Decimal(0), requests=group.requests, confidence=0.7,
            risk="medium", evidence=evidence))
    found.sort(key=lambda o: -float(o.evidence["p99_latency_ms"]))  # type: ignore[arg-type]
    return found[:MAX_LISTED]
