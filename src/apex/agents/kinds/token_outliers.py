"""`output_token_caps` and `prompt_trimming`: outliers in output and input tokens.

Per (model, feature) group the ledger gives the p95 threshold and the calls above it. A group is
heavy-tailed when its p99 is at least `TAIL_RATIO` times its median; then a cap (outputs) or a
trim (inputs) at the p95 would have removed the tokens above the threshold, priced at the
model's output or (uncached) input price. The saving acts on the group's spend.

Confidence = rows x tail x kind: rows = `support(calls above the threshold, 25)`, tail =
`separation(p99, p50, TAIL_RATIO)` (the further the tail stands from the median, the clearer
the outliers are), kind = 1 for caps and 0.9 for trimming (a trimmed prompt needs the application
to change). Risk: one warning when the cap or trim removes more than a quarter of those calls'
tokens, another above three quarters (answers cut short, context lost).
"""

from __future__ import annotations

from decimal import Decimal

from apex.agents.kinds.confidence import bounded, risk_of, separation, support
from apex.agents.opportunity import Opportunity, group_spend
from apex.agents.scope import AnalysisScope, UsageData, micro_usd
from apex.analytics.pricing import MILLION, PriceCatalog
from apex.analytics.results import TokenOutlierGroup

TAIL_RATIO = 6.0


def _heavy(group: TokenOutlierGroup) -> bool:
    return (
        group.p50_tokens > 0
        and group.p99_tokens >= TAIL_RATIO * group.p50_tokens
        and group.excess_tokens > 0
    )


def _cut(group: TokenOutlierGroup) -> float:
    """The share of the outlier calls' tokens the threshold removes."""
    return group.excess_tokens / group.outlier_tokens if group.outlier_tokens else 0.0


def _evidence(group: TokenOutlierGroup) -> dict[str, object]:
    return {
        "provider": group.provider,
        "model": group.model,
        "feature": group.feature,
        "p50_tokens": group.p50_tokens,
        "p95_tokens": group.p95_tokens,
        "p99_tokens": group.p99_tokens,
        "max_tokens": group.max_tokens,
        "threshold_tokens": group.threshold,
        "outlier_requests": group.outlier_requests,
        "excess_tokens": group.excess_tokens,
        "cut_share": round(_cut(group), 4),
        "outlier_cost_usd": micro_usd(group.outlier_cost_usd),
    }


def find(data: UsageData, scope: AnalysisScope, catalog: PriceCatalog) -> list[Opportunity]:
    found: list[Opportunity] = []
    for kind, groups in (
        ("output_token_caps", data.output_outliers),
        ("prompt_trimming", data.input_outliers),
    ):
        for group in groups:
            price = catalog.resolve(group.model, group.provider)
            if price is None or not _heavy(group):
                continue
            output = kind == "output_token_caps"
            per_mtok = price.output if output else price.input
            feature = group.feature or "untagged"
            title = (
                f"Cap output tokens of {feature} calls on {group.model} at {group.threshold:,}"
                if output
                else f"Trim oversized {feature} prompts on {group.model} to "
                f"{group.threshold:,} tokens"
            )
            savings = Decimal(group.excess_tokens) * per_mtok / MILLION
            tail = separation(group.p99_tokens, group.p50_tokens, TAIL_RATIO)
            confidence = support(group.outlier_requests, 25) * tail * (1.0 if output else 0.9)
            found.append(
                Opportunity(
                    kind=kind,
                    key=f"{group.model}-{group.feature}",
                    title=title,
                    period_savings_usd=savings,
                    requests=group.outlier_requests,
                    confidence=bounded(confidence),
                    risk=risk_of(sum((_cut(group) > 0.25, _cut(group) > 0.75))),
                    spend=group_spend(data, group.provider, group.model, group.feature, savings),
                    evidence={
                        **_evidence(group),
                        ("output_per_mtok" if output else "input_per_mtok"): str(per_mtok),
                    },
                )
            )
    return found
