"""The recommendation finders and the optimization agent on usage built here by hand.

Every group's cost, every candidate's cost and every combined saving is computed in the test
from prices.json with plain Decimal arithmetic, never with the code under test.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from apex.agents.analyses import AnalysisContext
from apex.agents.kinds import batch_api, error_retry_waste, model_routing, token_outliers
from apex.agents.optimization import Optimization, OptimizationAgent
from apex.agents.scope import AnalysisScope, UsageData
from apex.analytics.ledger_duckdb import DuckDBLedger
from apex.analytics.pricing import PriceCatalog
from apex.analytics.results import (
    BatchableGroup,
    BatchableShare,
    ColumnCoverage,
    ErrorGroup,
    ErrorRetryWaste,
    ModelFeatureUsage,
    ModelUsage,
    TokenOutlierGroup,
    UsagePeriod,
    UsageTotals,
)
from apex.execution.context import UserExecutionContext
from apex.execution.dispatcher import ToolDispatcher
from apex.execution.emitter import RunEmitter
from apex.execution.workflow import WorkflowContext
from apex.money import format_usd
from apex.realtime.memory import InProcessEventBus

MILLION = Decimal(1_000_000)
RANK = {"small": 0, "mid": 1, "frontier": 2}
PERIOD = UsagePeriod(start=datetime(2026, 10, 2, tzinfo=UTC), end=datetime(2026, 11, 1, tzinfo=UTC))
SCOPE = AnalysisScope(tenant_id="user-1", period=PERIOD)
CATALOG = PriceCatalog.load()
PRICES: dict[tuple[str, str], dict[str, Any]] = {
    (entry["provider"], entry["id"]): entry
    for entry in json.loads(
        resources.files("apex.analytics").joinpath("data/prices.json").read_text()
    )["models"]
}


def priced(
    entry: dict[str, Any], *, input_tokens: int, output_tokens: int, reasoning_tokens: int = 0
) -> Decimal:
    """Uncached input, answer output and reasoning tokens (at the reasoning price if the entry
    has one, else at the output price)."""
    reasoning = entry.get("reasoning") or entry["output"]
    return (
        input_tokens * Decimal(entry["input"])
        + (output_tokens - reasoning_tokens) * Decimal(entry["output"])
        + reasoning_tokens * Decimal(reasoning)
    ) / MILLION


def group(
    provider: str,
    model: str,
    feature: str,
    *,
    requests: int,
    input_per: int,
    p50_output: float,
    p95_output: float,
    reasoning_per: int = 0,
    errors: int = 0,
) -> ModelFeatureUsage:
    output_per = int(p50_output)
    tokens = {
        "input_tokens": requests * input_per,
        "output_tokens": requests * output_per,
        "reasoning_tokens": requests * reasoning_per,
    }
    return ModelFeatureUsage(
        provider=provider,
        model=model,
        feature=feature,
        operation="chat",
        requests=requests,
        cost_usd=priced(PRICES[(provider, model)], **tokens),
        cached_input_tokens=0,
        errors=errors,
        p50_input_tokens=input_per,
        p50_output_tokens=p50_output,
        p95_output_tokens=p95_output,
        **tokens,
    )


def usage(*mix: ModelFeatureUsage, **parts: Any) -> UsageData:
    requests = sum(g.requests for g in mix)
    totals = UsageTotals(
        requests=requests,
        cost_usd=sum((g.cost_usd for g in mix), Decimal(0)),
        input_tokens=sum(g.input_tokens for g in mix),
        output_tokens=sum(g.output_tokens for g in mix),
        cached_input_tokens=0,
        reasoning_tokens=sum(g.reasoning_tokens for g in mix),
        errors=sum(g.errors for g in mix),
        unpriced_requests=0,
        first_timestamp=None,
        last_timestamp=None,
    )
    coverage = ColumnCoverage(
        requests=requests,
        latency_rows=0,
        ttft_rows=0,
        feature_rows=requests,
        prompt_hash_rows=0,
        prefix_hash_rows=0,
        priced_rows=requests,
        output_token_rows=requests,
    )
    models: dict[tuple[str, str], list[ModelFeatureUsage]] = {}
    for g in mix:
        models.setdefault((g.provider, g.model), []).append(g)
    by_model = [
        ModelUsage(
            provider=provider,
            model=model,
            requests=sum(g.requests for g in groups),
            cost_usd=sum((g.cost_usd for g in groups), Decimal(0)),
            input_tokens=sum(g.input_tokens for g in groups),
            output_tokens=sum(g.output_tokens for g in groups),
            cached_input_tokens=0,
            reasoning_tokens=sum(g.reasoning_tokens for g in groups),
            errors=sum(g.errors for g in groups),
            unpriced_requests=0,
            p50_latency_ms=None,
            p95_latency_ms=None,
        )
        for (provider, model), groups in models.items()
    ]
    return UsageData(totals=totals, coverage=coverage, by_model=by_model, mix=list(mix), **parts)


def expected_candidates(g: ModelFeatureUsage, min_tier: str) -> list[tuple[Decimal, str]]:
    """Same-provider chat models at or above `min_tier` cheaper for the group, cheapest first."""
    tokens = {
        "input_tokens": g.input_tokens,
        "output_tokens": g.output_tokens,
        "reasoning_tokens": g.reasoning_tokens,
    }
    return sorted(
        (priced(entry, **tokens), model_id)
        for (provider, model_id), entry in PRICES.items()
        if provider == g.provider
        and model_id != g.model
        and entry["kind"] == "chat"
        and RANK[entry["tier"]] >= RANK[min_tier]
        and priced(entry, **tokens) < g.cost_usd
    )[:5]


@pytest.mark.parametrize(
    ("model", "reasoning_per", "min_tier"),
    [
        ("gpt-4o", 0, "mid"),  # frontier, short answers: one tier down at most
        ("gpt-4.1-mini", 0, "small"),  # mid, short answers without reasoning: small allowed
        ("o4-mini", 20, "mid"),  # mid, but it reasons: its signals keep it at mid
    ],
)
def test_routing_keeps_the_quality_floor_and_lists_every_candidate(
    model: str, reasoning_per: int, min_tier: str
) -> None:
    g = group(
        "openai",
        model,
        "classification",
        requests=500,
        input_per=600,
        p50_output=30,
        p95_output=40,
        reasoning_per=reasoning_per,
    )
    (found,) = model_routing.find(usage(g), SCOPE, CATALOG)
    expected = expected_candidates(g, min_tier)
    evidence = found.evidence
    assert evidence["min_tier"] == min_tier
    assert [(c["model"], c["cost_usd"]) for c in evidence["candidates"]] == [
        (name, float(cost.quantize(Decimal("0.000001")))) for cost, name in expected
    ]
    assert evidence["alternative_model"] == expected[0][1]
    assert all(RANK[c["tier"]] >= RANK[min_tier] for c in evidence["candidates"])
    assert found.period_savings_usd == g.cost_usd - expected[0][0]
    assert [(s.key, s.cost_usd, s.savings_usd) for s in found.spend] == [
        (("openai", model, "classification"), g.cost_usd, g.cost_usd - expected[0][0])
    ]


def test_a_frontier_group_is_not_sent_to_the_providers_cheapest_model() -> None:
    g = group(
        "openai",
        "gpt-4o",
        "classification",
        requests=500,
        input_per=600,
        p50_output=4,
        p95_output=10,
    )
    (found,) = model_routing.find(usage(g), SCOPE, CATALOG)
    cheapest = min(
        (priced(entry, input_tokens=g.input_tokens, output_tokens=g.output_tokens), model_id)
        for (provider, model_id), entry in PRICES.items()
        if provider == "openai" and entry["kind"] == "chat"
    )
    assert PRICES[("openai", cheapest[1])]["tier"] == "small"
    assert found.evidence["alternative_model"] != cheapest[1]
    assert found.evidence["alternative_tier"] in ("mid", "frontier")


def _thin_and_rich(kind: str) -> tuple[UsageData, UsageData]:
    """Two data sets with the same signal: little, spread-out evidence and plenty of it."""
    if kind == "model_routing":
        return (
            usage(
                group(
                    "openai",
                    "gpt-4o",
                    "classification",
                    requests=60,
                    input_per=600,
                    p50_output=4,
                    p95_output=60,
                    errors=5,
                )
            ),
            usage(
                group(
                    "openai",
                    "gpt-4o",
                    "classification",
                    requests=6000,
                    input_per=600,
                    p50_output=4,
                    p95_output=6,
                )
            ),
        )
    if kind == "batch_api":

        def batch(requests: int, tagged: int) -> UsageData:
            g = group(
                "openai",
                "gpt-4.1",
                "nightly",
                requests=requests,
                input_per=1000,
                p50_output=300,
                p95_output=600,
            )
            share = BatchableShare(
                requests=requests,
                cost_usd=g.cost_usd,
                batchable_requests=requests,
                batchable_cost_usd=g.cost_usd,
                keywords=["nightly"],
                groups=[
                    BatchableGroup(
                        provider="openai",
                        model="gpt-4.1",
                        feature="nightly",
                        requests=requests,
                        cost_usd=g.cost_usd,
                        input_tokens=g.input_tokens,
                        output_tokens=g.output_tokens,
                        tagged_requests=tagged,
                        off_hours_requests=requests,
                    )
                ],
            )
            return usage(g, batchable=share)

        return batch(25, 0), batch(5000, 5000)
    if kind == "output_token_caps":

        def outliers(outlier_requests: int, p99: float) -> UsageData:
            g = group(
                "anthropic",
                "claude-sonnet-4",
                "summaries",
                requests=20 * outlier_requests,
                input_per=3000,
                p50_output=300,
                p95_output=900,
            )
            outlier = TokenOutlierGroup(
                provider="anthropic",
                model="claude-sonnet-4",
                feature="summaries",
                requests=g.requests,
                p50_tokens=300,
                p95_tokens=900,
                p99_tokens=p99,
                max_tokens=int(p99) + 500,
                threshold=900,
                outlier_requests=outlier_requests,
                outlier_tokens=outlier_requests * int(p99),
                outlier_cost_usd=Decimal(1),
            )
            return usage(g, output_outliers=[outlier])

        return outliers(3, 1_900), outliers(400, 7_000)

    def failures(requests: int, transient: str) -> UsageData:
        failed = requests // 5
        g = group(
            "mistral_ai",
            "mistral-large",
            "chat",
            requests=requests,
            input_per=1500,
            p50_output=200,
            p95_output=500,
            errors=failed,
        )
        waste = ErrorRetryWaste(
            error_requests=failed,
            error_cost_usd=Decimal(2),
            retry_requests=0,
            retry_cost_usd=Decimal(0),
            retry_window_s=60,
            retries=[],
            errors=[
                ErrorGroup(
                    provider="mistral_ai",
                    model="mistral-large",
                    error_type=transient,
                    requests=failed,
                    cost_usd=Decimal(2),
                    input_tokens=failed * 1500,
                    output_tokens=0,
                )
            ],
        )
        return usage(g, errors=waste)

    return failures(60, "invalid_request"), failures(5000, "rate_limit")


FIND = {
    "model_routing": model_routing.find,
    "batch_api": batch_api.find,
    "output_token_caps": token_outliers.find,
    "error_retry_waste": error_retry_waste.find,
}


# The warning signs of each data set, counted by hand from what `_thin_and_rich` builds.
RISKS = {
    # thin: a tier drop and 8.3% errors; rich: the tier drop only
    "model_routing": ("high", "medium"),
    # thin: no call named as batch work; rich: every call is
    "batch_api": ("high", "low"),
    # thin: the cap removes 53% of the outliers' tokens; rich: 87% (a longer tail, cut harder)
    "output_token_caps": ("medium", "high"),
    # both: no other model to fall back to; thin: none of the failures is transient
    "error_retry_waste": ("high", "medium"),
}


@pytest.mark.parametrize("kind", sorted(FIND))
def test_confidence_and_risk_follow_the_evidence(kind: str) -> None:
    thin, rich = (FIND[kind](data, SCOPE, CATALOG) for data in _thin_and_rich(kind))
    (weak,), (strong,) = ([o for o in found if o.kind == kind] for found in (thin, rich))
    for found in (weak, strong):
        assert 0.05 <= found.confidence <= 0.95
        assert found.confidence == round(found.confidence, 2)
    assert weak.confidence < strong.confidence
    assert (weak.risk, strong.risk) == RISKS[kind]


async def _run(data: UsageData, finders: list[str] | None) -> tuple[Optimization, list[Any]]:
    """The optimization agent over signals built by hand (the ledger is real but holds nothing:
    the finders only read the signals given to them)."""
    bus = InProcessEventBus(replay_max=10_000, replay_ttl_s=600, retained_runs=10)
    await bus.start()
    ledger = DuckDBLedger(Path(tempfile.mkdtemp()) / "empty.duckdb", memory_limit_mb=128, threads=1)
    analyses = AnalysisContext(tenant_id="user-1", ledger=ledger, catalog=CATALOG, usage=data)
    ctx = UserExecutionContext(
        user_id="user-1",
        thread_id="t-" + uuid.uuid4().hex[:12],
        run_id="r-" + uuid.uuid4().hex[:12],
        request_id="q-1",
    )
    emitter = RunEmitter(ctx, bus, task="optimize")
    try:
        await emitter.start_supervisor()
        context = WorkflowContext(
            ctx=ctx,
            text="optimize",
            history=(),
            events=emitter,
            tools=ToolDispatcher(emitter, default_timeout_s=60),
        )
        agent_ = OptimizationAgent()
        async with context.agent(agent_.name, agent_.task) as agent:
            result = await agent_.run(agent, analyses, SCOPE, finders=finders)
        events = [event.to_dict() for event in await bus.replay(ctx.run_id)]
    finally:
        await bus.close()
        ledger.close()
    return result, events


async def test_the_achievable_saving_counts_an_overlap_once() -> None:
    # a nightly classification job: routable to a cheaper model, and batchable as well
    g = group(
        "openai",
        "gpt-4o",
        "nightly-classification",
        requests=2000,
        input_per=600,
        p50_output=4,
        p95_output=8,
    )
    share = BatchableShare(
        requests=g.requests,
        cost_usd=g.cost_usd,
        batchable_requests=g.requests,
        batchable_cost_usd=g.cost_usd,
        keywords=["nightly"],
        groups=[
            BatchableGroup(
                provider="openai",
                model="gpt-4o",
                feature="nightly-classification",
                requests=g.requests,
                cost_usd=g.cost_usd,
                input_tokens=g.input_tokens,
                output_tokens=g.output_tokens,
                tagged_requests=g.requests,
                off_hours_requests=g.requests,
            )
        ],
    )
    data = usage(g, batchable=share)
    routed_cost = expected_candidates(g, "mid")[0][0]
    routing = g.cost_usd - routed_cost
    batch = g.cost_usd * Decimal(PRICES[("openai", "gpt-4o")]["batch_discount"])
    # routing saves more, so it goes first; the batch discount then applies to the routed cost
    expected = routing + routed_cost * Decimal(PRICES[("openai", "gpt-4o")]["batch_discount"])

    result, events = await _run(data, None)
    assert {r["kind"] for r in result.recommendations} == {"model_routing", "batch_api"}
    assert abs(result.achievable_period_savings_usd - expected) < Decimal("1e-18")
    assert expected < routing + batch
    thoughts = [e["payload"]["thought"] for e in events if e["type"] == "agent_thinking"]
    monthly = expected * 30 / Decimal(30)
    assert any(f"{format_usd(float(monthly))}/month together" in t for t in thoughts), thoughts
    assert not any("overlap in places" in t for t in thoughts)

    only, events = await _run(data, ["find_batch_api"])
    assert [r["kind"] for r in only.recommendations] == ["batch_api"]
    assert only.achievable_period_savings_usd == batch
    called = [e["payload"]["tool_name"] for e in events if e["type"] == "tool_executing"]
    assert called == ["find_batch_api"]


async def test_an_unknown_finder_is_refused() -> None:
    with pytest.raises(ValueError, match="find_everything"):
        await _run(usage(), ["find_everything"])
