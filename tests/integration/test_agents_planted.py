"""On the demo workload the full workflow finds every planted saving, priced right, to the cent.

Each expected figure is recomputed here from the generated rows and prices.json with plain
Python (Decimal arithmetic, sorted lists), never with the code under test; the workflow runs on
both ledger engines.
"""

from __future__ import annotations

import ast
import json
import math
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest
import yaml

from apex.analytics.demo import PLANTED
from tests.support.agent_harness import demo_rows, load_demo, run_workflow, supervisor
from tests.support.protocol_checks import check_run_stream

ROWS = 30_000
USER = "planted-user"
MILLION = Decimal(1_000_000)
TIER_RANK = {"small": 0, "mid": 1, "frontier": 2}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return demo_rows(ROWS)


@pytest.fixture(scope="module")
def prices() -> dict[tuple[str, str], dict[str, Any]]:
    document = json.loads(
        resources.files("apex.analytics").joinpath("data/prices.json").read_text()
    )
    return {(entry["provider"], entry["id"]): entry for entry in document["models"]}


def row_cost(row: dict[str, Any], price: dict[str, Any]) -> Decimal:
    unit = {
        name: Decimal(str(price[name])) if price.get(name) is not None else None
        for name in ("input", "cached_input", "output", "reasoning")
    }
    cached = unit["cached_input"] if unit["cached_input"] is not None else unit["input"]
    reasoning = unit["reasoning"] if unit["reasoning"] is not None else unit["output"]
    return (
        Decimal(row["input_tokens"] - row["cached_input_tokens"]) * unit["input"]
        + Decimal(row["cached_input_tokens"]) * cached
        + Decimal(row["output_tokens"] - row["reasoning_tokens"]) * unit["output"]
        + Decimal(row["reasoning_tokens"]) * reasoning
    ) / MILLION


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (the ledger's quantile_cont)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


def find(report: dict[str, Any], kind: str, **evidence: Any) -> dict[str, Any]:
    matches = [
        item
        for item in report["recommendations"]
        if item["kind"] == kind
        and all(item["evidence"].get(key) == value for key, value in evidence.items())
    ]
    assert len(matches) == 1, (kind, evidence, [r["id"] for r in report["recommendations"]])
    return matches[0]


def close(actual: float, expected: Decimal) -> bool:
    return abs(Decimal(str(actual)) - expected) <= abs(expected) * Decimal("0.05") + Decimal("0.01")


async def test_every_planted_opportunity_is_found_and_priced_from_the_rows(
    usage_ledger,
    rows: list[dict[str, Any]],  # type: ignore[no-untyped-def]
    prices: dict[tuple[str, str], dict[str, Any]],
) -> None:
    await load_demo(usage_ledger, USER, ROWS)
    run = await run_workflow(supervisor(usage_ledger), USER, "How can I cut my AI costs by 30%?")
    check_run_stream(run.events, run_id=run.ctx.run_id, user_id=USER, state="completed")
    assert run.agents() == ["triage", "data", "optimization", "actions", "reporting"]
    report = run.report
    start, end = parse(report["period"]["from"]), parse(report["period"]["to"])
    days = Decimal(str((end - start).total_seconds())) / Decimal(86_400)
    in_period = [row for row in rows if start <= row["timestamp"] < end]
    assert len(in_period) == ROWS

    def monthly(amount: Decimal) -> Decimal:
        return amount * 30 / days

    def cost(row: dict[str, Any]) -> Decimal:
        return row_cost(row, prices[(row["provider"], row["model"])])

    # totals, to the cent
    total = sum((cost(row) for row in in_period), Decimal(0))
    assert report["totals"]["requests"] == len(in_period)
    assert Decimal(str(report["totals"]["cost_usd"])).quantize(Decimal("0.01")) == total.quantize(
        Decimal("0.01")
    )
    assert report["totals"]["errors"] == sum(row["status"] == "error" for row in in_period)
    assert report["totals"]["input_tokens"] == sum(row["input_tokens"] for row in in_period)
    assert sum(Decimal(str(m["cost_usd"])) for m in report["by_model"]).quantize(
        Decimal("0.01")
    ) == total.quantize(Decimal("0.01"))

    def group(provider: str, model: str, feature: str | None = None) -> list[dict[str, Any]]:
        return [
            row
            for row in in_period
            if (row["provider"], row["model"]) == (provider, model)
            and (feature is None or row["feature"] == feature)
        ]

    planted = {item.id: item for item in PLANTED}

    # model routing: the same tokens on the cheapest chat model of the provider at or above the
    # group's quality floor: one tier below its model at most, and small only for short
    # answers without reasoning tokens; every cheaper candidate (five at most) is listed
    item = planted["routing-classification"]
    routed = group(item.provider, item.model, item.feature)
    current = sum((cost(row) for row in routed), Decimal(0))
    short = percentile([row["output_tokens"] for row in routed], 0.95) <= 64 and not any(
        row["reasoning_tokens"] for row in routed
    )
    floor = max(TIER_RANK[prices[(item.provider, item.model)]["tier"]] - 1, 0 if short else 1)
    options = {
        model_id: sum((row_cost(row, price) for row in routed), Decimal(0))
        for (provider, model_id), price in prices.items()
        if provider == item.provider
        and price["kind"] == "chat"
        and model_id != item.model
        and TIER_RANK[price["tier"]] >= floor
    }
    ranked = sorted(
        (name for name in options if options[name] < current),
        key=lambda name: (options[name], name),
    )
    routing = find(report, "model_routing", model=item.model, feature=item.feature)
    assert routing["evidence"]["alternative_model"] == ranked[0]
    assert [c["model"] for c in routing["evidence"]["candidates"]] == ranked[:5]
    assert all(close(c["cost_usd"], options[c["model"]]) for c in routing["evidence"]["candidates"])
    cheapest_of_provider = min(
        (
            (sum((row_cost(row, price) for row in routed), Decimal(0)), model_id)
            for (provider, model_id), price in prices.items()
            if provider == item.provider and price["kind"] == "chat"
        )
    )[1]
    assert ranked[0] != cheapest_of_provider  # that one is two tiers below gpt-4o
    assert close(routing["monthly_savings_usd"], monthly(current - options[ranked[0]]))
    assert abs(routing["traffic_share"] - len(routed) / len(in_period)) < 0.001
    (acts_on,) = routing["evidence"]["acts_on"]
    assert abs(Decimal(str(acts_on["cost_usd"])) - current) < Decimal("0.000001")

    # response cache: every repeat of a successful prompt after its dearest call
    item = planted["duplicate-classification-prompts"]
    by_prompt: dict[str, list[Decimal]] = defaultdict(list)
    for row in group(item.provider, item.model):
        if row["status"] == "ok" and row["prompt_hash"]:
            by_prompt[row["prompt_hash"]].append(cost(row))
    repeats = sum((sum(c) - max(c) for c in by_prompt.values() if len(c) > 1), Decimal(0))
    cache = find(report, "prompt_caching", model=item.model, mechanism="response_cache")
    assert close(cache["monthly_savings_usd"], monthly(repeats))

    # provider prompt caching: prefix tokens resent after the first call, at the cached price
    item = planted["uncached-shared-prefixes"]
    prefix_groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in group(item.provider, item.model):
        if row["prefix_hash"]:
            prefix_groups[row["prefix_hash"]].append(row)
    resent = sum(
        (len(g) - 1) * max(r["prefix_tokens"] for r in g)
        for g in prefix_groups.values()
        if len(g) > 1
    )
    price = prices[(item.provider, item.model)]
    saving = Decimal(resent) * (Decimal(price["input"]) - Decimal(price["cached_input"])) / MILLION
    prefix = find(report, "prompt_caching", model=item.model, mechanism="provider_prompt_caching")
    assert close(prefix["monthly_savings_usd"], monthly(saving))

    # batch: the nightly job at the batch discount
    item = planted["nightly-batch-job"]
    nightly = sum((cost(row) for row in group(item.provider, item.model, item.feature)), Decimal(0))
    batch = find(report, "batch_api", model=item.model, feature=item.feature)
    discount = Decimal(prices[(item.provider, item.model)]["batch_discount"])
    assert close(batch["monthly_savings_usd"], monthly(nightly * discount))

    # token caps and trimming: the tokens above the group's p95, at the output / input price
    for planted_id, kind, column, unit in (
        ("summary-output-outliers", "output_token_caps", "output_tokens", "output"),
        ("extraction-input-outliers", "prompt_trimming", "input_tokens", "input"),
    ):
        item = planted[planted_id]
        values = [row[column] for row in group(item.provider, item.model, item.feature)]
        threshold = math.ceil(round(percentile(values, 0.95), 6))
        excess = sum(value - threshold for value in values if value > threshold)
        saving = Decimal(excess) * Decimal(prices[(item.provider, item.model)][unit]) / MILLION
        found = find(report, kind, model=item.model, feature=item.feature)
        assert found["evidence"]["threshold_tokens"] == threshold
        assert close(found["monthly_savings_usd"], monthly(saving))

    # errors: what the failing model's failed calls cost
    item = planted["mistral-errors-and-retries"]
    failed = [row for row in group(item.provider, item.model) if row["status"] == "error"]
    waste = find(report, "error_retry_waste", model=item.model)
    assert close(waste["monthly_savings_usd"], monthly(sum((cost(r) for r in failed), Decimal(0))))
    assert waste["evidence"]["failed_requests"] == len(failed)
    assert waste["evidence"]["retries"] > 0

    # latency: the slow agent tail, with its percentiles recomputed
    item = planted["slow-agent-calls"]
    latencies = [row["latency_ms"] for row in group(item.provider, item.model, item.feature)]
    slow = find(report, "latency", model=item.model, feature=item.feature)
    assert slow["monthly_savings_usd"] == 0
    assert (
        abs(slow["evidence"]["p99_latency_ms"] - percentile(latencies, 0.99))
        <= percentile(latencies, 0.99) * 0.05
    )

    # savings_pct and ranking are consistent with the totals
    for entry in report["recommendations"]:
        expected_pct = 100 * entry["evidence"]["period_savings_usd"] / float(total)
        assert abs(entry["savings_pct"] - expected_pct) < 0.02
    money = [r["monthly_savings_usd"] for r in report["recommendations"] if r["kind"] != "latency"]
    assert money == sorted(money, reverse=True)

    # confidence and risk come from each recommendation's own evidence
    for entry in report["recommendations"]:
        assert 0.05 <= entry["confidence"] <= 0.95
        assert entry["confidence"] == round(entry["confidence"], 2)
        assert entry["risk"] in ("low", "medium", "high")
    assert len({entry["confidence"] for entry in report["recommendations"]}) > 2

    # together: applied one after another over the same (provider, model, feature) spend,
    # largest saving first, each taking its own share of what the ones before it left
    left: dict[tuple[str, str, str], Decimal] = {}
    achievable = Decimal(0)
    for entry in sorted(
        report["recommendations"], key=lambda r: (-r["evidence"]["period_savings_usd"], r["id"])
    ):
        for part in entry["evidence"].get("acts_on", []):
            key = (part["provider"], part["model"], part["feature"])
            spend = Decimal(str(part["cost_usd"]))
            if part["feature"]:
                rows_spend = sum((cost(row) for row in group(*key)), Decimal(0))
                assert abs(spend - rows_spend) < Decimal("0.000001"), key
            fraction = min(Decimal(str(part["savings_usd"])) / spend, Decimal(1))
            before = left.setdefault(key, spend)
            left[key] = before * (1 - fraction)
            achievable += before * fraction
    plain = sum(
        (Decimal(str(r["evidence"]["period_savings_usd"])) for r in report["recommendations"]),
        Decimal(0),
    )
    assert achievable < plain  # routing and the response cache share gpt-4o's classification
    figures = report["answer"]["figures"]
    assert abs(
        Decimal(str(figures["achievable_monthly_savings_usd"])) - monthly(achievable)
    ) <= Decimal("0.01")

    # one action plan per recommendation, each concrete, its snippet in its stated format
    # one action plan per recommendation, each concrete
    assert [a["recommendation_id"] for a in report["actions"]] == [
        r["id"] for r in report["recommendations"]
    ]
    for action in report["actions"]:
        snippet = action["config_snippet"]
        if action["config_format"] == "yaml":
            assert isinstance(yaml.safe_load(snippet), dict)
        elif action["config_format"] == "json":
            assert isinstance(json.loads(snippet), dict)
        else:
            assert action["config_format"] == "python"
            ast.parse(snippet)
        assert not any(f'"{name}/' in snippet for name in ("gcp.gemini", "mistral_ai"))
    plan = next(a for a in report["actions"] if a["recommendation_id"] == routing["id"])
    assert f'"openai/{ranked[0]}"' in plan["config_snippet"]
    assert plan["validation"] and plan["rollback"] and plan["steps"]
    assert "## Recommendations" in report["markdown"] and run.final_response == report["markdown"]
