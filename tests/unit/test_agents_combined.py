"""Combined savings: recommendations applied one after another over the same spend.

Every expected figure is worked out here by hand from the opportunities the test builds.
"""

from __future__ import annotations

from decimal import Decimal

from apex.agents.combined import application_order, combine
from apex.agents.opportunity import Opportunity, SpendShare, group_spend, model_spend
from apex.agents.scope import UsageData
from apex.analytics.results import ColumnCoverage, ModelFeatureUsage, UsageTotals

CLASSIFY = ("openai", "gpt-4o", "classification")
EXTRACT = ("openai", "gpt-4o", "extraction")
NIGHTLY = ("openai", "gpt-4.1", "nightly")


def share(group: tuple[str, str, str], cost: str, savings: str) -> SpendShare:
    return SpendShare(*group, cost_usd=Decimal(cost), savings_usd=Decimal(savings))


def opportunity(kind: str, key: str, *shares: SpendShare) -> Opportunity:
    return Opportunity(
        kind=kind,
        key=key,
        title=key,
        period_savings_usd=sum((s.savings_usd for s in shares), Decimal(0)),
        requests=1,
        confidence=0.5,
        risk="low",
        spend=shares,
    )


ROUTING = opportunity("model_routing", "classify", share(CLASSIFY, "100", "60"))
CACHE = opportunity("prompt_caching", "responses", share(CLASSIFY, "100", "30"))
BATCH = opportunity("batch_api", "nightly", share(NIGHTLY, "50", "25"))


def test_an_overlap_shrinks_what_the_later_recommendation_saves() -> None:
    result = combine([CACHE, ROUTING])
    # routing (60 of 100) goes first; the cache then saves 30% of the 40 left
    assert [item.opportunity.key for item in result.applied] == ["classify", "responses"]
    assert [item.period_savings_usd for item in result.applied] == [Decimal(60), Decimal(12)]
    assert result.period_savings_usd == Decimal(72)
    assert result.period_savings_usd < ROUTING.period_savings_usd + CACHE.period_savings_usd


def test_recommendations_on_separate_spend_add_up() -> None:
    result = combine([BATCH, ROUTING, CACHE])
    assert result.period_savings_usd == Decimal(60) + Decimal(40) * Decimal("0.3") + Decimal(25)


def test_two_kinds_on_the_same_spend_never_save_more_than_it() -> None:
    first = opportunity("model_routing", "a", share(CLASSIFY, "100", "80"))
    second = opportunity("output_token_caps", "b", share(CLASSIFY, "100", "80"))
    everything = opportunity("error_retry_waste", "c", share(CLASSIFY, "100", "100"))
    assert combine([first, second]).period_savings_usd == Decimal(100) - Decimal(20) * Decimal(
        "0.2"
    )
    assert combine([first, second, everything]).period_savings_usd == Decimal(100)
    # a share that claims more than its spend saves the spend, no more
    greedy = opportunity("batch_api", "d", share(CLASSIFY, "100", "150"))
    assert combine([greedy, first]).period_savings_usd == Decimal(100)


def test_the_total_does_not_depend_on_the_order_only_the_credit_does() -> None:
    third = opportunity(
        "prompt_trimming", "t", share(CLASSIFY, "100", "10"), share(EXTRACT, "40", "4")
    )
    items = [ROUTING, CACHE, BATCH, third]
    remaining = Decimal(100) * Decimal("0.4") * Decimal("0.7") * Decimal("0.9")
    expected = (Decimal(100) - remaining) + Decimal(4) + Decimal(25)
    assert combine(items).period_savings_usd == expected
    assert combine(reversed(items)).period_savings_usd == expected
    assert [o.key for o in application_order(items)] == ["classify", "responses", "nightly", "t"]


def test_an_opportunity_without_spend_adds_nothing() -> None:
    latency = Opportunity(
        kind="latency",
        key="slow",
        title="slow",
        period_savings_usd=Decimal(0),
        requests=5,
        confidence=0.5,
        risk="medium",
    )
    result = combine([latency, ROUTING])
    assert result.period_savings_usd == Decimal(60)
    assert result.applied[-1].period_savings_usd == Decimal(0)
    assert combine([]).period_savings_usd == Decimal(0)


def _mix(provider: str, model: str, feature: str, cost: str) -> ModelFeatureUsage:
    return ModelFeatureUsage(
        provider=provider,
        model=model,
        feature=feature,
        operation="chat",
        requests=10,
        cost_usd=Decimal(cost),
        input_tokens=1000,
        output_tokens=100,
        cached_input_tokens=0,
        reasoning_tokens=0,
        errors=0,
        p50_input_tokens=100,
        p50_output_tokens=10,
        p95_output_tokens=12,
    )


def _data(*mix: ModelFeatureUsage) -> UsageData:
    totals = UsageTotals(
        requests=10 * len(mix),
        cost_usd=sum((m.cost_usd for m in mix), Decimal(0)),
        input_tokens=0,
        output_tokens=0,
        cached_input_tokens=0,
        reasoning_tokens=0,
        errors=0,
        unpriced_requests=0,
        first_timestamp=None,
        last_timestamp=None,
    )
    coverage = ColumnCoverage(
        requests=totals.requests,
        latency_rows=0,
        ttft_rows=0,
        feature_rows=0,
        prompt_hash_rows=0,
        prefix_hash_rows=0,
        priced_rows=totals.requests,
        output_token_rows=totals.requests,
    )
    return UsageData(totals=totals, coverage=coverage, mix=list(mix))


def test_a_per_model_saving_spreads_over_the_models_features_by_spend() -> None:
    data = _data(_mix(*CLASSIFY, "75"), _mix(*EXTRACT, "25"), _mix(*NIGHTLY, "10"))
    shares = model_spend(data, "openai", "gpt-4o", Decimal(20))
    assert [(s.feature, s.cost_usd, s.savings_usd) for s in shares] == [
        ("classification", Decimal(75), Decimal(15)),
        ("extraction", Decimal(25), Decimal(5)),
    ]
    # routing classification first leaves the cache 20% of the 25 still spent there
    routing = opportunity("model_routing", "classify", share(CLASSIFY, "75", "50"))
    cache = Opportunity(
        kind="prompt_caching",
        key="responses",
        title="cache",
        period_savings_usd=Decimal(20),
        requests=1,
        confidence=0.5,
        risk="low",
        spend=shares,
    )
    expected = Decimal(50) + Decimal(25) * Decimal("0.2") + Decimal(5)
    assert combine([routing, cache]).period_savings_usd == expected


def test_a_group_saving_acts_on_that_groups_spend() -> None:
    data = _data(_mix(*CLASSIFY, "30"), _mix(*CLASSIFY, "10"), _mix(*EXTRACT, "5"))
    (only,) = group_spend(data, *CLASSIFY, Decimal(8))
    assert (only.key, only.cost_usd, only.savings_usd) == (CLASSIFY, Decimal(40), Decimal(8))
    assert only.fraction == Decimal("0.2")
    (unknown,) = group_spend(data, "openai", "gpt-4o", "absent", Decimal(3))
    assert (unknown.cost_usd, unknown.fraction) == (Decimal(3), Decimal(1))
