"""Entity extraction of the built-in engine, and how named periods resolve against the data."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from apex.llm.classify import classify_request
from apex.llm.entities import (
    extract_budgets,
    extract_dimension,
    extract_features,
    extract_latency_target_ms,
    extract_model_moves,
    extract_models,
    extract_percentiles,
    extract_providers,
    extract_targets,
    parse_number,
)
from apex.llm.periods import extract_period
from apex.llm.plan import RequestedPeriod, RequestEntities, SpendBudget
from apex.llm.screening import normalize

ANCHOR = date(2026, 11, 15)


def entities(text: str) -> RequestEntities:
    return classify_request(text).entities


@pytest.mark.parametrize(
    ("text", "models"),
    [
        ("Is gpt-4o-mini good enough to replace gpt-4o?", ["gpt-4o-mini", "gpt-4o"]),
        ("move from GPT 4o to gpt4.1-mini", ["gpt-4o", "gpt-4.1-mini"]),
        ("Claude 3.5 Sonnet vs claude-3-haiku", ["claude-3.5-sonnet", "claude-3-haiku"]),
        ("sonnet 4.5 or opus 4", ["claude-sonnet-4.5", "claude-opus-4"]),
        ("o3-mini and o1", ["o3-mini", "o1"]),
        (
            "gemini 2.0 flash, Llama 3.1 70B and mixtral 8x7b",
            ["gemini-2.0-flash", "llama-3.1-70b", "mixtral-8x7b"],
        ),
        ("deepseek-r1 or qwen2.5 72b", ["deepseek-r1", "qwen2.5-72b"]),
        ("text-embedding-3-small costs", ["text-embedding-3-small"]),
        ("write a haiku", []),
    ],
)
def test_models(text: str, models: list[str]) -> None:
    assert extract_models(normalize(text)) == models


@pytest.mark.parametrize(
    ("text", "providers"),
    [
        ("We use OpenAI and Anthropic", ["openai", "anthropic"]),
        ("Azure OpenAI is throttling us", ["azure.ai.openai"]),
        ("AWS Bedrock or Vertex AI?", ["aws.bedrock", "gcp.vertex_ai"]),
        ("self-hosted on vLLM, fallback to Groq", ["vllm", "groq"]),
        ("nothing here", []),
    ],
)
def test_providers(text: str, providers: list[str]) -> None:
    assert extract_providers(normalize(text)) == providers


@pytest.mark.parametrize(
    ("text", "features"),
    [
        ("What would moving summarization to a cheaper model save?", ["summarization"]),
        ("and only for summarisation?", ["summarization"]),
        ("our classification and entity extraction calls", ["classification", "extraction"]),
        ("the support bot and embeddings", ["support", "embeddings"]),
        ("costs of the `invoice-parser` feature", ["invoice-parser"]),
        ("feature=search_v2 is slow", ["search_v2"]),
        ("the onboarding workload", ["onboarding"]),
        ("the whole feature set", []),
        ("summarize my usage", []),
    ],
)
def test_features(text: str, features: list[str]) -> None:
    assert extract_features(normalize(text)) == features


@pytest.mark.parametrize(
    ("text", "percent", "metric"),
    [
        ("How can I cut my AI costs by 30%?", 30.0, "cost"),
        ("reduce latency by 20 percent", 20.0, "latency"),
        ("Cut our monthly bill in half", 50.0, "cost"),
        ("reduce token usage by 12.5%", 12.5, "tokens"),
        ("halve our spend", 50.0, "cost"),
        ("Wie kann ich meine KI-Kosten um 30 % senken?", 30.0, "cost"),
        ("die Latenz um 12,5 Prozent senken", 12.5, "latency"),
        ("unsere Rechnung halbieren", 50.0, "cost"),
        ("réduire nos coûts de 30 %", 30.0, "cost"),
    ],
)
def test_targets(text: str, percent: float, metric: str) -> None:
    (target,) = extract_targets(normalize(text))
    assert (target.percent, target.metric) == (percent, metric)


@pytest.mark.parametrize(
    "text",
    [
        "80% of our traffic is gpt-4o",
        "summaries at 95% accuracy",
        "a 250% increase",
    ],
)
def test_percentages_that_are_not_targets(text: str) -> None:
    assert extract_targets(normalize(text)) == []


@pytest.mark.parametrize(
    ("text", "amount", "per"),
    [
        ("Our budget is $5k/month", 5_000.0, "month"),
        ("keep spend under $5,000 per month", 5_000.0, "month"),
        ("we can afford 1.2 million dollars a year", 1_200_000.0, "year"),
        ("cap it at $200/day", 200.0, "day"),
        ("$5k/month", 5_000.0, "month"),
        ("stay below $30k", 30_000.0, None),
        ("Wir haben ein Budget von 5.000 $ im Monat", 5_000.0, "month"),
        ("ein Budget von 5000 Dollar pro Monat", 5_000.0, "month"),
        ("Budget: 5k monatlich", 5_000.0, "month"),
        ("höchstens 1.234,56 $ pro Woche", 1_234.56, "week"),
        ("unser Budget sind 5k", 5_000.0, None),
        ("un budget de 5 000 $ par mois", 5_000.0, "month"),
        ("We have $5k a month", 5_000.0, "month"),
    ],
)
def test_budgets(text: str, amount: float, per: str | None) -> None:
    (budget,) = extract_budgets(normalize(text))
    assert (budget.amount_usd, budget.per) == (amount, per)


def test_current_spend_is_not_a_budget() -> None:
    budgets = extract_budgets(
        normalize("We spend $20k/month on claude; how do we get it down to $12k/month?")
    )
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
        date(2026, 1, 1),
        date(2026, 11, 16),
    )
    future = RequestedPeriod(text="x", start=date(2027, 1, 1), to_anchor=True)
    start, end = future.resolve(ANCHOR)
    assert start == end == date(2026, 11, 16)


def test_full_request_entities() -> None:
    found = entities(
        "Cut gpt-4o and claude-3-5-sonnet summarization costs on OpenAI by 30% "
        "in March, with a budget of $5k/month"
    )
    assert found.models == ["gpt-4o", "claude-3-5-sonnet"]
    assert found.providers == ["openai"]
    assert found.features == ["summarization"]
    assert found.targets[0].percent == 30
    assert found.budgets[0].amount_usd == 5_000
    assert found.period is not None and found.period.month == 3


def test_entity_fields_are_bounded_for_provider_output() -> None:
    parsed = RequestEntities.model_validate(
        {"models": ["GPT 4o <script>"], "features": ["Summar ization!"]}
    )
    assert parsed.models == ["gpt-4o-script"]
    assert parsed.features == ["summar-ization"]
    with pytest.raises(ValidationError):
        RequestEntities.model_validate({"models": ["m"] * 21})
    with pytest.raises(ValidationError):
        RequestEntities.model_validate({"targets": [{"percent": 250, "text": "250%"}]})
    period = RequestedPeriod.model_validate(
        {"text": "<img src=x onerror=alert(1)> last week", "calendar": "last_week"}
    )
    assert "<" not in period.text and ">" not in period.text


@pytest.mark.parametrize(
    ("text", "models"),
    [
        ("is gpt-7-ultra any good?", ["gpt-7-ultra"]),
        ("claude-9-opus vs gemini-9-pro", ["claude-9-opus", "gemini-9-pro"]),
        ("llama-9 on our own boxes", ["llama-9"]),
        ("Wie viel hat claude-9-mega gestern gekostet?", ["claude-9-mega"]),
        ("our gpt-4o-powered bot and GPT-4o-mini-Aufrufe", ["gpt-4o", "gpt-4o-mini"]),
        ("gpt-4o-mini-2024-07-18 and o4-mini", ["gpt-4o-mini-2024-07-18", "o4-mini"]),
        ("gpt-5-codex-max or grok-4-fast", ["gpt-5-codex-max", "grok-4-fast"]),
        ("codestral and mistral large", ["codestral", "mistral-large"]),
        ("gpt-4o chat is slow", ["gpt-4o"]),
        ("GPT-4o-Kosten und Mistral-Aufrufe", ["gpt-4o"]),
        ("Claude and Gemini", ["claude", "gemini"]),
    ],
)
def test_any_version_of_a_known_family_is_a_model(text: str, models: list[str]) -> None:
    assert extract_models(normalize(text)) == models


@pytest.mark.parametrize(
    ("text", "models", "targets"),
    [
        (
            "Switch summarization from claude-sonnet-4 to claude-haiku-4-5",
            ["claude-sonnet-4"],
            ["claude-haiku-4-5"],
        ),
        ("what would moving gpt-4o to gpt-4o-mini save", ["gpt-4o"], ["gpt-4o-mini"]),
        ("migrating chat to gemini-2.5-flash", [], ["gemini-2.5-flash"]),
        ("replace gpt-4o with gpt-4o-mini", ["gpt-4o"], ["gpt-4o-mini"]),
        ("swap gpt-4o for gpt-4o-mini", ["gpt-4o"], ["gpt-4o-mini"]),
        ("use gpt-4o-mini instead of gpt-4o", ["gpt-4o"], ["gpt-4o-mini"]),
        ("Is gpt-4o-mini good enough to replace gpt-4o?", ["gpt-4o"], ["gpt-4o-mini"]),
        ("Wechsel von gpt-4o zu gpt-4o-mini", ["gpt-4o"], ["gpt-4o-mini"]),
        ("von gpt-4o auf claude-haiku-4-5 wechseln", ["gpt-4o"], ["claude-haiku-4-5"]),
        ("gpt-4o durch gpt-4o-mini ersetzen", ["gpt-4o"], ["gpt-4o-mini"]),
        ("chat auf claude-haiku-4-5 umstellen", [], ["claude-haiku-4-5"]),
        ("gpt-4o-mini statt gpt-4o", ["gpt-4o"], ["gpt-4o-mini"]),
        ("passer de gpt-4o à gpt-4o-mini", ["gpt-4o"], ["gpt-4o-mini"]),
        ("remplacer gpt-4o par gpt-4o-mini", ["gpt-4o"], ["gpt-4o-mini"]),
        ("compare gpt-4o to claude-3-5-sonnet", ["gpt-4o", "claude-3-5-sonnet"], []),
        (
            "Vergleiche die Kosten von gpt-4o mit claude-3-5-sonnet",
            ["gpt-4o", "claude-3-5-sonnet"],
            [],
        ),
        ("gpt-4o is pricey.\nmove chat to gpt-4o-mini", ["gpt-4o"], ["gpt-4o-mini"]),
        ("move gpt-4o to gpt-4o-mini and gpt-4o to gpt-4o-mini", ["gpt-4o"], ["gpt-4o-mini"]),
    ],
)
def test_moves_name_their_target(text: str, models: list[str], targets: list[str]) -> None:
    assert extract_model_moves(normalize(text)) == (models, targets)


def test_a_target_is_never_also_in_scope() -> None:
    text = normalize("move chat from gpt-4o-mini to gpt-4o, then keep gpt-4o-mini for extraction")
    assert extract_model_moves(text) == (["gpt-4o-mini"], ["gpt-4o"])
    text = normalize("switch gpt-4o to gpt-4o-mini; is gpt-4o-mini fast enough?")
    assert extract_model_moves(text) == (["gpt-4o"], ["gpt-4o-mini"])


@pytest.mark.parametrize(
    ("text", "providers"),
    [
        ("Why are so many mistral calls failing?", ["mistral_ai"]),
        ("Warum schlagen so viele Mistral-Aufrufe fehl?", ["mistral_ai"]),
        ("mistral-large is slow", []),
    ],
)
def test_bare_mistral_is_the_provider(text: str, providers: list[str]) -> None:
    assert extract_providers(normalize(text)) == providers


@pytest.mark.parametrize(
    ("text", "features"),
    [
        ("Wie viel kosten unsere Zusammenfassungen?", ["summarization"]),
        ("die Zusammenfassung und die Klassifizierung", ["summarization", "classification"]),
        (
            "Klassifikation, Extraktion und Übersetzungen",
            ["classification", "extraction", "translation"],
        ),
        ("eine Zusammenfassung für den CFO", []),
        ("le coût des traductions et du support client", ["translation", "support"]),
    ],
)
def test_features_in_german_and_french(text: str, features: list[str]) -> None:
    assert extract_features(normalize(text)) == features


@pytest.mark.parametrize(
    ("text", "dimension"),
    [
        ("which feature costs the most", "feature"),
        ("spend per provider", "provider"),
        ("costs by model", "model"),
        ("Kosten nach Modell", "model"),
        ("Ausgaben pro Anbieter", "provider"),
        ("Welche Funktion ist am teuersten?", "feature"),
        ("dépenses par fournisseur", "provider"),
        ("how much did we spend", None),
    ],
)
def test_dimension(text: str, dimension: str | None) -> None:
    assert extract_dimension(normalize(text)) == dimension


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5,000", 5_000.0),
        ("5.000", 5_000.0),
        ("1.234,56", 1_234.56),
        ("1,234.56", 1_234.56),
        ("12,5", 12.5),
        ("1.2", 1.2),
        ("5 000", 5_000.0),
        ("1.000.000", 1_000_000.0),
        ("42", 42.0),
    ],
)
def test_numbers_in_either_notation(text: str, value: float) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text",
    ["we handle 5k requests per day", "under 5k requests", "wir geben 20.000 $ im Monat aus"],
)
def test_counts_and_current_spend_are_not_budgets(text: str) -> None:
    assert extract_budgets(normalize(text)) == []


def test_screening_keeps_numbers_and_ranges_whole() -> None:
    found = entities("Keep spend under $5,000 per month between 2026-01-01 and 2026-01-31")
    assert [(b.amount_usd, b.per) for b in found.budgets] == [(5_000.0, "month")]
    assert found.period is not None
    assert found.period.resolve(ANCHOR) == (date(2026, 1, 1), date(2026, 2, 1))


def test_german_percentiles_and_latency_target() -> None:
    text = normalize("das 95. Perzentil unter 1,5 Sekunden")
    assert extract_percentiles(text) == [95.0]
    assert extract_latency_target_ms(text) == 1_500.0
    assert extract_targets(normalize("30 % der Anfragen")) == []


def _month_after(day: date) -> tuple[date, date]:
    first = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following


def _previous_monday(day: date) -> date:
    return date.fromordinal(day.toordinal() - day.weekday() - 7)


GERMAN_AND_FRENCH_PERIODS: list[tuple[str, tuple[date, date]]] = [
    ("gestern", (date(2026, 11, 14), date(2026, 11, 15))),
    ("heute", (ANCHOR, date(2026, 11, 16))),
    ("letzte Woche", (_previous_monday(ANCHOR), date(2026, 11, 9))),
    ("in der vergangenen Woche", (_previous_monday(ANCHOR), date(2026, 11, 9))),
    ("diese Woche", (date(2026, 11, 9), date(2026, 11, 16))),
    ("letzten Monat", (date(2026, 10, 1), date(2026, 11, 1))),
    ("im letzten Monat", (date(2026, 10, 1), date(2026, 11, 1))),
    ("diesen Monat", (date(2026, 11, 1), date(2026, 11, 16))),
    ("nächsten Monat", _month_after(ANCHOR)),
    ("letzte 7 Tage", (date(2026, 11, 9), date(2026, 11, 16))),
    ("in den vergangenen 30 Tagen", (date(2026, 10, 17), date(2026, 11, 16))),
    ("die letzten zwei Wochen", (date(2026, 11, 2), date(2026, 11, 16))),
    ("im März", (date(2026, 3, 1), date(2026, 4, 1))),
    ("Dezember", (date(2025, 12, 1), date(2026, 1, 1))),
    ("im Januar 2027", (date(2027, 1, 1), date(2027, 2, 1))),
    ("Q3", (date(2026, 7, 1), date(2026, 10, 1))),
    ("im 3. Quartal 2025", (date(2025, 7, 1), date(2025, 10, 1))),
    ("seit Oktober", (date(2026, 10, 1), date(2026, 11, 16))),
    ("zwischen 2026-01-01 und 2026-01-31", (date(2026, 1, 1), date(2026, 2, 1))),
    ("la semaine dernière", (_previous_monday(ANCHOR), date(2026, 11, 9))),
    ("le mois dernier", (date(2026, 10, 1), date(2026, 11, 1))),
    ("ce mois-ci", (date(2026, 11, 1), date(2026, 11, 16))),
    ("le mois prochain", _month_after(ANCHOR)),
    ("les 7 derniers jours", (date(2026, 11, 9), date(2026, 11, 16))),
    ("en janvier 2027", (date(2027, 1, 1), date(2027, 2, 1))),
    ("aujourd'hui", (ANCHOR, date(2026, 11, 16))),
    ("next month", _month_after(ANCHOR)),
    ("Forecast January 2027", (date(2027, 1, 1), date(2027, 2, 1))),
]


@pytest.mark.parametrize(
    ("text", "days"), GERMAN_AND_FRENCH_PERIODS, ids=[t for t, _ in GERMAN_AND_FRENCH_PERIODS]
)
def test_german_and_french_periods(text: str, days: tuple[date, date]) -> None:
    period = extract_period(normalize(text))
    assert period is not None
    assert period.resolve(ANCHOR, future=True) == days


def test_a_month_with_a_future_year_keeps_its_year() -> None:
    period = extract_period(normalize("Forecast January 2027"))
    assert period is not None and (period.month, period.year) == (1, 2027)
    next_month = extract_period(normalize("What will I spend next month?"))
    assert next_month is not None and next_month.calendar == "next_month"
    next_week = extract_period(normalize("nächste Woche"))
    assert next_week is not None and next_week.calendar == "next_week"
