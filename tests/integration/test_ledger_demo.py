"""The demo workload: realistic shape, deterministic, and every planted saving is found."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apex.analytics.demo import PLANTED, DemoWorkload, PlantedOpportunity
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger import SqlLedger
from apex.analytics.pricing import PriceCatalog

END = datetime(2026, 11, 1, tzinfo=UTC)
ROWS = 40_000


def test_the_workload_is_deterministic_and_shaped_like_production() -> None:
    first = next(DemoWorkload(5_000, seed=3, end=END).chunks())
    again = next(DemoWorkload(5_000, seed=3, end=END).chunks())
    other = next(DemoWorkload(5_000, seed=4, end=END).chunks())
    assert first.equals(again) and not first.equals(other)
    rows = first.to_pylist()
    assert len({row["provider"] for row in rows}) >= 4
    assert {row["feature"] for row in rows} >= {
        "chat",
        "summarization",
        "classification",
        "extraction",
        "embeddings",
        "agent_tool_calls",
    }
    error_rate = sum(row["status"] == "error" for row in rows) / len(rows)
    assert 0.03 <= error_rate <= 0.07
    assert all(END.replace(tzinfo=None) > row["timestamp"] for row in rows)
    weekday = [row for row in rows if row["timestamp"].weekday() < 5]
    assert len(weekday) / len(rows) > 5 / 7


@pytest.fixture(scope="module")
def planted() -> dict[str, PlantedOpportunity]:
    return {item.id: item for item in PLANTED}


async def _load(ledger: SqlLedger) -> None:
    importer = UsageImporter(ledger, PriceCatalog.load())
    status = await importer.load_demo("demo-user", rows=ROWS, seed=7, end=END)
    assert status.rows_accepted == ROWS and status.unpriced == []
    again = await importer.load_demo("demo-user", rows=ROWS, seed=7, end=END)
    assert again.rows_accepted == ROWS
    assert (await ledger.totals("demo-user")).requests == ROWS


async def test_the_analysis_finds_every_planted_opportunity(
    usage_ledger: SqlLedger, planted: dict[str, PlantedOpportunity]
) -> None:
    await _load(usage_ledger)
    tenant = "demo-user"
    totals = await usage_ledger.totals(tenant)
    mix = await usage_ledger.by_model_feature(tenant)

    def share(item: PlantedOpportunity) -> float:
        rows = [
            m
            for m in mix
            if (m.provider, m.model, m.feature) == (item.provider, item.model, item.feature)
        ]
        return sum(m.requests for m in rows) / totals.requests

    routing = planted["routing-classification"]
    row = next(m for m in mix if (m.model, m.feature) == (routing.model, routing.feature))
    assert row.p95_output_tokens <= routing.signal["output_tokens_p95_at_most"]
    assert abs(share(routing) - routing.signal["traffic_share"]) < 0.03
    catalog = PriceCatalog.load()
    assert catalog.cheaper_alternatives(
        routing.model,
        routing.provider,
        input_tokens=int(row.p50_input_tokens),
        output_tokens=int(row.p50_output_tokens),
    )

    duplicates = await usage_ledger.duplicate_prompts(tenant)
    dup = planted["duplicate-classification-prompts"]
    group = next(g for g in duplicates.groups if g.model == dup.model)
    assert (
        group.duplicate_requests / group.hashed_requests
        >= dup.signal["duplicate_share_of_model_at_least"]
    )
    assert duplicates.groups[0].model == dup.model
    assert {p.model for p in duplicates.top_prompts} == {dup.model}

    prefixes = await usage_ledger.shared_prefixes(tenant)
    prefix = planted["uncached-shared-prefixes"]
    assert prefixes.shared_share >= prefix.signal["shared_prefix_share_at_least"]
    top_prefix = prefixes.groups[0]
    assert (top_prefix.provider, top_prefix.model) == (prefix.provider, prefix.model)
    assert top_prefix.cached_input_tokens == prefix.signal["cached_input_tokens"]
    assert top_prefix.repeated_prefix_tokens >= (
        (top_prefix.requests - top_prefix.prefixes) * prefix.signal["smallest_prefix_tokens"]
    )

    batch = planted["nightly-batch-job"]
    batchable = await usage_ledger.batchable_share(tenant)
    nightly = next(g for g in batchable.groups if g.feature == batch.feature)
    assert nightly.requests == sum(m.requests for m in mix if m.feature == batch.feature)
    assert nightly.tagged_requests == nightly.requests
    assert batchable.batchable_share >= batch.signal["traffic_share"] * 0.8
    hours = await usage_ledger.hour_of_day(tenant)
    night = sum(h.requests for h in hours.hours if h.hour in batch.signal["hours_utc"])
    assert night >= nightly.requests

    caps = planted["summary-output-outliers"]
    outputs = await usage_ledger.token_outliers(tenant, kind="output")
    top = outputs[0]
    assert (top.provider, top.model, top.feature) == (caps.provider, caps.model, caps.feature)
    assert top.p99_tokens >= caps.signal["outlier_tokens_at_least"]
    assert top.p50_tokens < 2 * caps.signal["output_tokens_median"]
    assert top.excess_tokens > 0

    trim = planted["extraction-input-outliers"]
    inputs = await usage_ledger.token_outliers(tenant, kind="input")
    extraction = next(g for g in inputs if g.feature == trim.feature)
    assert extraction.p99_tokens >= trim.signal["outlier_tokens_at_least"]
    assert inputs[0].feature == trim.feature

    errors = planted["mistral-errors-and-retries"]
    models = await usage_ledger.by_model(tenant)
    rates = {m.model: m.errors / m.requests for m in models}
    assert max(rates, key=rates.__getitem__) == errors.model
    assert rates[errors.model] >= errors.signal["error_rate"] * 0.8
    assert all(
        rate <= errors.signal["other_error_rate_at_most"] + 0.02
        for model, rate in rates.items()
        if model != errors.model
    )
    waste = await usage_ledger.error_retry_waste(tenant)
    retries = next(r for r in waste.retries if r.model == errors.model)
    assert retries.retries > 0 and retries.recovered > 0
    failed = sum(e.requests for e in waste.errors if e.model == errors.model)
    assert retries.retries >= failed * 0.5
    assert 0.03 <= totals.errors / totals.requests <= 0.07

    slow = planted["slow-agent-calls"]
    latency = await usage_ledger.latency_percentiles(tenant)
    first = latency.groups[0]
    assert (first.model, first.feature) == (slow.model, slow.feature)
    assert first.p99_latency_ms >= slow.signal["p99_latency_ms_at_least"]
