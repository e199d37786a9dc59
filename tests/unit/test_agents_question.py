"""A plan checked against the caller's names and the catalog: scope, unknown names, periods."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from apex.agents.question import understand
from apex.analytics.filters import OWN_CALLS_FEATURE
from apex.analytics.pricing import PriceCatalog
from apex.analytics.results import UsageNames
from apex.llm import Intent, QuestionPlan, RequestedPeriod, RequestEntities

CATALOG = PriceCatalog.load()
NAMES = [
    UsageNames(provider=p, model=m, feature=f, requests=10)
    for p, m, f in (
        ("openai", "gpt-4o", "chat"),
        ("openai", "gpt-4o-mini", "classification"),
        ("anthropic", "claude-sonnet-4", "summarization"),
        ("anthropic", "claude-haiku-4-5", "summarization"),
        ("mistral_ai", "mistral-large", "chat"),
    )
]
NEWEST = datetime(2026, 11, 30, 17, 45, 12, 345_678, tzinfo=UTC)
MONDAY = date(2026, 12, 7)


def plan(intent: Intent = Intent.SPEND, **entities: object) -> QuestionPlan:
    return QuestionPlan(
        category="reporting", intent=intent, entities=RequestEntities.model_validate(entities)
    )


def test_names_narrow_to_the_rows_own_spellings_and_families() -> None:
    understood = understand(
        plan(models=["GPT-4o", "claude"], providers=["mistral"], features=["Summarization"]),
        names=NAMES,
        catalog=CATALOG,
        newest=NEWEST,
        today=MONDAY,
    )
    where = understood.where
    assert where.models == ("gpt-4o", "claude-haiku-4-5", "claude-sonnet-4")
    assert where.providers == ("mistral_ai",) and where.features == ("summarization",)
    assert understood.question.unknown == [] and not understood.nothing_to_compute
    assert where.exclude_features == ()


def test_an_unknown_name_is_reported_and_never_narrows() -> None:
    mixed = understand(
        plan(models=["gpt-4o", "gpt-7-ultra"]),
        names=NAMES,
        catalog=CATALOG,
        newest=NEWEST,
        today=MONDAY,
    )
    assert mixed.where.models == ("gpt-4o",) and mixed.question.unknown == ["gpt-7-ultra"]
    assert not mixed.nothing_to_compute
    alone = understand(
        plan(models=["gpt-7-ultra"]), names=NAMES, catalog=CATALOG, newest=NEWEST, today=MONDAY
    )
    assert alone.nothing_to_compute and alone.question.unknown == ["gpt-7-ultra"]


def test_a_catalog_model_the_rows_lack_is_a_valid_target() -> None:
    understood = understand(
        plan(Intent.WHAT_IF, models=["claude-sonnet-4"], target_models=["gpt-4.1-mini"]),
        names=NAMES,
        catalog=CATALOG,
        newest=NEWEST,
        today=MONDAY,
    )
    assert understood.question.target_models == ["gpt-4.1-mini"]
    assert understood.question.unknown == []


def test_the_platforms_own_calls_are_left_out_unless_named() -> None:
    names = [
        *NAMES,
        UsageNames(provider="openai", model="gpt-4o-mini", feature=OWN_CALLS_FEATURE, requests=2),
    ]
    plain = understand(plan(), names=names, catalog=CATALOG, newest=NEWEST, today=MONDAY)
    assert plain.where.exclude_features == (OWN_CALLS_FEATURE,)
    asked = understand(
        plan(features=["apex"]), names=names, catalog=CATALOG, newest=NEWEST, today=MONDAY
    )
    assert asked.where.exclude_features == () and asked.where.features == ("apex",)


def test_without_a_named_period_the_report_covers_30_days_to_the_newest_row() -> None:
    understood = understand(plan(), names=NAMES, catalog=CATALOG, newest=NEWEST, today=MONDAY)
    assert understood.question.period.end == "2026-11-30T17:45:12.346Z"
    assert understood.question.period.start == "2026-10-31T17:45:12.346Z"


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        (RequestedPeriod(text="yesterday", calendar="yesterday"), "2026-12-06", "2026-12-07"),
        (RequestedPeriod(text="last week", calendar="last_week"), "2026-11-30", "2026-12-07"),
        (RequestedPeriod(text="this month", calendar="this_month"), "2026-12-01", "2026-12-08"),
        (RequestedPeriod(text="last month", calendar="last_month"), "2026-11-01", "2026-12-01"),
        (RequestedPeriod(text="last 7 days", last_days=7), "2026-12-01", "2026-12-08"),
        (RequestedPeriod(text="in March", month=3), "2026-03-01", "2026-04-01"),
        (RequestedPeriod(text="in December", month=12), "2026-12-01", "2026-12-08"),
    ],
)
def test_relative_periods_resolve_against_today(
    period: RequestedPeriod, start: str, end: str
) -> None:
    understood = understand(
        plan(period=period.model_dump()), names=NAMES, catalog=CATALOG, newest=NEWEST, today=MONDAY
    )
    assert understood.question.period.start == f"{start}T00:00:00.000Z"
    assert understood.question.period.end == f"{end}T00:00:00.000Z"


def test_a_forecast_is_for_next_month_and_reads_the_default_period() -> None:
    understood = understand(
        plan(Intent.FORECAST), names=NAMES, catalog=CATALOG, newest=NEWEST, today=MONDAY
    )
    assert understood.question.period.start == "2027-01-01T00:00:00.000Z"
    assert understood.question.period.end == "2027-02-01T00:00:00.000Z"
    assert understood.period is not None and understood.forecast is not None
    assert understood.period.end - understood.period.start == timedelta(days=30)
