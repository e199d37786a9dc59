"""Entity extraction of the built-in engine, and how named periods resolve against the data."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from apex.llm.classification import RequestedPeriod, RequestEntities, SpendBudget
from apex.llm.classify import classify_request
from apex.llm.entities import (
    extract_budgets,
    extract_features,
    extract_latency_target_ms,
    extract_models,
    extract_percentiles,
    extract_providers,
    extract_targets,
)
from apex.llm.periods import extract_period
from apex.llm.screening import normalize

ANCHOR = date(2026, 11, 15)


def entities(text: str) -> RequestEntities:
    return classify_request(text).entities


@pytest.mark.parametrize(("text", "models"), [
    ("Is gpt-4o-mini good enough to replace gpt-4o?", ["gpt-4o-mini", "gpt-4o"]),
    ("move from GPT 4o to gpt4.1-mini", ["gpt-4o", "gpt-4.1-mini"]),
    ("Claude 3.5 Sonnet vs claude-3-haiku", ["claude-3.5-sonnet", "claude-3-haiku"]),
    ("sonnet 4.5 or opus 4", ["claude-sonnet-4.5", "claude-opus-4"]),
    ("o3-mini and o1", ["o3-mini", "o1"]),
    ("gemini 2.0 flash, Llama 3.1 70B and mixtral 8x7b", ["gemini-2.0-flash", "llama-3.1-70b",
                                                          "mixtral-8x7b"]),
    ("deepseek-r1 or qwen2.5 72b", ["deepseek-r1", "qwen2.5-72b"]),
    ("text-embedding-3-small costs", ["text-embedding-3-small"]),
    ("write a haiku", []),
])
def test_models(text: str, models: list[str]) -> None:
    assert extract_models(normalize(text)) == models


@pytest.mark.parametrize(("text", "providers"), [
    ("We use OpenAI and Anthropic", ["openai", "anthropic"]),
    ("Azure OpenAI is throttling us", ["azure.ai.openai"]),
    ("AWS Bedrock or Vertex AI?", ["aws.bedrock", "gcp.vertex_ai"]),
    ("self-hosted on vLLM, fallback to Groq", ["vllm", "groq"]),
    ("nothing here", []),
])
def test_providers(text: str, providers: list[str]) -> None:
    assert extract_providers(normalize(text)) == providers


@pytest.mark.parametrize(("text", "features"), [
    ("What would moving summarization to a cheaper model save?", ["summarization"]),
    ("and only for summarisation?", ["summarization"]),
    ("our classification and entity extraction calls", ["classification", "extraction"]),
    ("the support bot and embeddings", ["support", "embeddings"]),
    ("costs of the `invoice-parser` feature", ["invoice-parser"]),
    ("feature=search_v2 is slow", ["search_v2"]),
    ("the onboarding workload", ["onboarding"]),
    ("the whole feature set", []),
    ("summarize my usage", []),
])
def test_features(text: str, features: list[str]) -> None:
    assert extract_features(normalize(text)) == features


@pytest.mark.parametrize(("text", "percent", "metric"), [
    ("How can I cut my AI costs by 30%?", 30.0, "cost"),
    ("reduce latency by 20 percent", 20.0, "latency"),
    ("Cut our monthly bill in half", 50.0, "cost"),
    ("reduce token usage by 12.5%", 12.5, "tokens"),
    ("halve our spend", 50.0, "cost"),
])
def test_targets(text: str, percent: float, metric: str) -> None:
    (target,) = extract_targets(normalize(text))
    assert (target.percent, target.metric) == (percent, metric)


@pytest.mark.parametrize("text", [
    "80% of our traffic is gpt-4o", "summaries at 95% accuracy", "a 250% increase",
])
def test_percentages_that_are_not_targets(text: str) -> None:
    assert extract_targets(normalize(text)) == []


@pytest.mark.parametrize(("text", "amount", "per"), [
    ("Our budget is $5k/month", 5_000.0, "month"),
    ("keep spend under $5,000 per month", 5_000.0, "month"),
    ("we can afford 1.2 million dollars a year", 1_200_000.0, "year"),
    ("cap it at $200/day", 200.0, "day"),
    ("$5k/month", 5_000.0, "month"),
    ("stay below $30k", 30_000.0, None),
])
def test_budgets(text: str, amount: float, per: str | None) -> None:
    (budget,) = extract_budgets(normalize(text))
    assert (budget.amount_usd, budget.per) == (amount, per)


def test_current_spend_is_not_a_budget() -> None:
    budgets = extract_budgets(normalize(
        "We spend $20k/month on claude; how do we get it down to $12k/month?"))
    assert [(b.amount_usd, b.per) for b in budgets] == [(12_000.0, "month")]
    assert extract_budgets(normalize("it costs us $400 a day")) == []


def test_budget_monthly_equivalent() -> None:
    assert SpendBudget(amount_usd=200, per="day", text="$200/day").monthly_usd == 6_000
    assert SpendBudget(amount_usd=12_000, per="year", text="x").monthly_usd == 1_000
    assert SpendBudget(amount_usd=5, per=None, text="x").monthly_usd is None


def test_percentiles_and_latency_target() -> None:
    text = normalize("Get p95 and the 99th percentile under 1.5 seconds")
    assert extract_percentiles(text) == [95.0, 99.0]
    assert extract_latency_target_ms(text) == 1_500.0
    assert extract_latency_target_ms(normalize("p99.9 below 800 ms")) == 800.0
    assert extract_percentiles(normalize("p99.9 below 800 ms")) == [99.9]
    assert extract_latency_target_ms(normalize("within 2 months")) is None


PERIODS: list[tuple[str, tuple[date, date]]] = [
    ("last 7 days", (date(2026, 11, 9), date(2026, 11, 16))),
    ("over the past two weeks", (date(2026, 11, 2), date(2026, 11, 16))),
    ("in the last 48 hours", (date(2026, 11, 14), date(2026, 11, 16))),
    ("in March", (date(2026, 3, 1), date(2026, 4, 1))),
    ("in December", (date(2025, 12, 1), date(2026, 1, 1))),
    ("December 2025", (date(2025, 12, 1), date(2026, 1, 1))),
    ("since 2026-10-01", (date(2026, 10, 1), date(2026, 11, 16))),
    ("since October", (date(2026, 10, 1), date(2026, 11, 16))),
    ("between 2026-01-01 and 2026-01-31", (date(2026, 1, 1), date(2026, 2, 1))),
    ("from March 3, 2026 to March 9, 2026", (date(2026, 3, 3), date(2026, 3, 10))),
    ("last month", (date(2026, 10, 1), date(2026, 11, 1))),
    ("past month", (date(2026, 10, 17), date(2026, 11, 16))),
    ("last week", (date(2026, 11, 2), date(2026, 11, 9))),
    ("this month", (date(2026, 11, 1), date(2026, 11, 16))),
    ("year to date", (date(2026, 1, 1), date(2026, 11, 16))),
    ("yesterday", (date(2026, 11, 14), date(2026, 11, 15))),
    ("Q3 2025", (date(2025, 7, 1), date(2025, 10, 1))),
    ("last quarter", (date(2026, 7, 1), date(2026, 10, 1))),
    ("in 2025", (date(2025, 1, 1), date(2026, 1, 1))),
    ("2026-02", (date(2026, 2, 1), date(2026, 3, 1))),
    ("until 2026-11-01", (date(2026, 10, 2), date(2026, 11, 1))),
]


@pytest.mark.parametrize(("text", "days"), PERIODS, ids=[t for t, _ in PERIODS])
def test_periods_resolve_against_the_anchor(text: str, days: tuple[date, date]) -> None:
    period = extract_period(normalize(text))
    assert period is not None
    assert period.resolve(ANCHOR) == days


@pytest.mark.parametrize("text", ["may I ask a question", "how are costs", "the 2026-13-45 run"])
def test_no_period(text: str) -> None:
    assert extract_period(normalize(text)) is None


def test_a_period_never_reaches_past_the_anchor() -> None:
    assert RequestedPeriod(text="2026", year=2026).resolve(ANCHOR) == (
        date(2026, 1, 1), date(2026, 11, 16))
    future = RequestedPeriod(text="x", start=date(2027, 1, 1), to_anchor=True)
    start, end = future.resolve(ANCHOR)
    assert start == end == date(2026, 11, 16)


def test_full_request_entities() -> None:
    found = entities("Cut gpt-4o and claude-3-5-sonnet summarization costs on OpenAI by 30% "
                     "in March, with a budget of $5k/month")
    assert found.models == ["gpt-4o", "claude-3-5-sonnet"]
    assert found.providers == ["openai"]
    assert found.features == ["summarization"]
    assert found.targets[0].percent == 30
    assert found.budgets[0].amount_usd == 5_000
    assert found.period is not None and found.period.month == 3


def test_entity_fields_are_bounded_for_provider_output() -> None:
    parsed = RequestEntities.model_validate(
        {"models": ["GPT 4o <script>"], "features": ["Summar ization!"]})
    assert parsed.models == ["gpt-4o-script"]
    assert parsed.features == ["summar-ization"]
    with pytest.raises(ValidationError):
        RequestEntities.model_validate({"models": ["m"] * 21})
    with pytest.raises(ValidationError):
        RequestEntities.model_validate({"targets": [{"percent": 250, "text": "250%"}]})
    period = RequestedPeriod.model_validate({"text": "<img src=x onerror=alert(1)> last week",
                                             "calendar": "last_week"})
    assert "<" not in period.text and ">" not in period.text
