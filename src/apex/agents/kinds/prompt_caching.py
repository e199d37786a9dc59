"""`prompt_caching`: exact duplicate prompts (a response cache) and long shared prefixes
(provider prompt caching at the cached-input price).

- Response cache, per (provider, model): every repeat of a successful prompt after its dearest
  call could be served from a cache; the saving is the ledger's `duplicate_cost_usd`. Proposed
  when at least `MIN_DUPLICATE_SHARE` of the model's hashed calls are repeats.
  Confidence = rows x share x concentration: rows = `support(hashed calls, 200)`, share =
  duplicate share / (duplicate share + 0.1), concentration = `support(repeats per repeated
  prompt, 1)` (a prompt repeated many times is a pattern, one repeated once may be chance).
  Risk: one warning when fewer than `PATTERN_SHARE` of the calls are repeats (a cache then
  mostly stores answers that are never asked again), one when prompts repeat twice or less
  on average (a stale answer is as likely as a useful one).
- Prefix caching, per (provider, model): the prefix tokens sent again after the first call of
  each prefix, not already read from the cache, billed at the cached-input price instead of
  the input price. Models without a discounted cache read are skipped.
  Confidence = rows x share x reuse: rows = `support(calls sharing a prefix, 200)`, share =
  the share of the model's calls that share a prefix, reuse = `support(calls per prefix, 2)`.
  Risk: prompts do not change, so low; one warning when prefixes are reused fewer than
  `MIN_REUSE` times on average (a cache write can cost more than the reads save).

Both savings are measured per model, so they act on the model's feature groups in proportion
to their spend (`model_spend`).
"""

from __future__ import annotations

from decimal import Decimal

from apex.agents.kinds.confidence import bounded, risk_of, support
from apex.agents.opportunity import Opportunity, model_spend
from apex.agents.scope import AnalysisScope, UsageData, micro_usd
from apex.analytics.pricing import MILLION, PriceCatalog

MIN_DUPLICATE_SHARE = 0.05
PATTERN_SHARE = 0.2
MIN_PREFIX_SHARE = 0.2
MIN_REUSE = 4


def _model_features(data: UsageData, provider: str, model: str) -> list[str]:
    return sorted(
        {row.feature for row in data.mix if (row.provider, row.model) == (provider, model)}
    )


def find(data: UsageData, scope: AnalysisScope, catalog: PriceCatalog) -> list[Opportunity]:
    return [*_response_cache(data), *_prefix_cache(data, catalog)]


def _response_cache(data: UsageData) -> list[Opportunity]:
    found: list[Opportunity] = []
    for group in data.duplicates.groups if data.duplicates else []:
        if not group.hashed_requests or group.duplicate_cost_usd <= 0:
            continue
        share = group.duplicate_requests / group.hashed_requests
        if share < MIN_DUPLICATE_SHARE:
            continue
        repeats = group.duplicate_requests / max(group.repeated_prompts, 1)
        confidence = (
            support(group.hashed_requests, 200) * share / (share + 0.1) * support(repeats, 1)
        )
        found.append(
            Opportunity(
                kind="prompt_caching",
                key=f"responses-{group.model}",
                title=f"Cache responses to repeated prompts on {group.model}",
                period_savings_usd=group.duplicate_cost_usd,
                requests=group.duplicate_requests,
                confidence=bounded(confidence),
                risk=risk_of(sum((share < PATTERN_SHARE, repeats <= 2))),
                spend=model_spend(data, group.provider, group.model, group.duplicate_cost_usd),
                evidence={
                    "mechanism": "response_cache",
                    "provider": group.provider,
                    "model": group.model,
                    "features": _model_features(data, group.provider, group.model),
                    "hashed_requests": group.hashed_requests,
                    "distinct_prompts": group.distinct_prompts,
                    "repeated_prompts": group.repeated_prompts,
                    "duplicate_requests": group.duplicate_requests,
                    "duplicate_share": round(share, 4),
                    "repeats_per_repeated_prompt": round(repeats, 2),
                    "duplicate_cost_usd": micro_usd(group.duplicate_cost_usd),
                },
            )
        )
    return found


def _prefix_cache(data: UsageData, catalog: PriceCatalog) -> list[Opportunity]:
    found: list[Opportunity] = []
    for group in data.prefixes.groups if data.prefixes else []:
        price = catalog.resolve(group.model, group.provider)
        if price is None or price.cached_input is None or price.cached_input >= price.input:
            continue
        uncached = max(group.repeated_prefix_tokens - group.cached_input_tokens, 0)
        savings = Decimal(uncached) * (price.input - price.cached_input) / MILLION
        model_requests = sum(
            m.requests
            for m in data.by_model
            if (m.provider, m.model) == (group.provider, group.model)
        )
        if savings <= 0 or not model_requests or group.requests / model_requests < MIN_PREFIX_SHARE:
            continue
        reuse = group.requests / max(group.prefixes, 1)
        confidence = (
            support(group.requests, 200)
            * min(group.requests / model_requests, 1.0)
            * support(reuse, 2)
        )
        found.append(
            Opportunity(
                kind="prompt_caching",
                key=f"prefixes-{group.model}",
                title=f"Turn on prompt caching for the shared prefixes on {group.model}",
                period_savings_usd=savings,
                requests=group.requests,
                confidence=bounded(confidence),
                risk=risk_of(int(reuse < MIN_REUSE)),
                spend=model_spend(data, group.provider, group.model, savings),
                evidence={
                    "mechanism": "provider_prompt_caching",
                    "provider": group.provider,
                    "model": group.model,
                    "features": _model_features(data, group.provider, group.model),
                    "shared_prefixes": group.prefixes,
                    "requests_sharing_a_prefix": group.requests,
                    "calls_per_prefix": round(reuse, 2),
                    "repeated_prefix_tokens": group.repeated_prefix_tokens,
                    "cached_input_tokens": group.cached_input_tokens,
                    "input_per_mtok": str(price.input),
                    "cached_input_per_mtok": str(price.cached_input),
                    "note": "cache writes may carry a premium on some providers; the saving counts "
                    "cache reads only",
                },
            )
        )
    return found
