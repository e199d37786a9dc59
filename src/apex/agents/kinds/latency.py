"""`latency`: p95/p99 outliers by model and feature, and time to first token where known.

A (model, feature) group qualifies when its p99 is at least `MIN_P99_MS` and `TAIL_RATIO` times
its median: a slow tail rather than a slow model; the `MAX_LISTED` slowest tails (by p99) are
kept. It saves time, not money, so its `monthly_savings_usd` is 0 and it acts on no spend; the
evidence carries the percentiles, a timeout (the p95, at least twice the median) and, when the
caller runs one, a model whose p95 is under that timeout to fall back to (`fast_fallback`).

Confidence = rows x tail, where rows = `support(requests, 100)` and tail =
`separation(p99, p50, TAIL_RATIO)`. Risk: one warning when time to first token is unknown (the
timeout then cuts whole answers, not a stalled stream), one when no faster fallback exists
(a call that times out is retried on the same model).
"""

from __future__ import annotations

from decimal import Decimal

from apex.agents.kinds.confidence import bounded, risk_of, separation, support
from apex.agents.kinds.fallbacks import fallback_evidence, fast_fallback
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
        if group.requests < MIN_REQUESTS:
            continue
        if (
            group.p99_latency_ms < MIN_P99_MS
            or group.p99_latency_ms < TAIL_RATIO * group.p50_latency_ms
        ):
            continue
        timeout = round(max(group.p95_latency_ms, 2 * group.p50_latency_ms))
        fallback = fast_fallback(data, catalog, group.provider, group.model, below_p95_ms=timeout)
        evidence: dict[str, object] = {
            "provider": group.provider,
            "model": group.model,
            "feature": group.feature,
            "requests": group.requests,
            "p50_latency_ms": group.p50_latency_ms,
            "p95_latency_ms": group.p95_latency_ms,
            "p99_latency_ms": group.p99_latency_ms,
            "max_latency_ms": group.max_latency_ms,
            "timeout_suggestion_ms": timeout,
            **fallback_evidence(fallback),
        }
        if group.ttft_requests:
            evidence.update(p50_ttft_ms=group.p50_ttft_ms, p95_ttft_ms=group.p95_ttft_ms)
        confidence = support(group.requests, 100) * separation(
            group.p99_latency_ms, group.p50_latency_ms, TAIL_RATIO
        )
        found.append(
            Opportunity(
                kind="latency",
                key=f"{group.model}-{group.feature}",
                title=f"Cut the slow tail of {group.feature or 'untagged'} calls on {group.model} "
                f"(p99 {group.p99_latency_ms / 1000:,.1f} s)",
                period_savings_usd=Decimal(0),
                requests=group.requests,
                confidence=bounded(confidence),
                risk=risk_of(sum((not group.ttft_requests, fallback is None))),
                evidence=evidence,
            )
        )
    found.sort(key=lambda o: -float(o.evidence["p99_latency_ms"]))
    return found[:MAX_LISTED]
