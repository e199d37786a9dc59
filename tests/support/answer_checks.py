"""Checks of an answered question against figures recomputed from the rows it was asked about.

Shared by the answers evaluation (the built-in engine) and its run against hosted-provider wire
formats: the fixtures load one user's generated usage into each ledger engine, and
`check_answer` holds a run's report to what tests/support/answer_cases.py computes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from apex.analytics.ledger import SqlLedger
from tests.support.agent_harness import RunRecord
from tests.support.answer_cases import (
    CASES,
    CENT,
    CONVERSATIONAL,
    HEADLINE_MONEY,
    KIND_OF_INTENT,
    RECOMMENDING,
    REQUIRED_FIGURES,
    TABLE_INTENTS,
    WITHOUT_FINDERS,
    Case,
    Expected,
    grouped,
    iso,
)
from tests.support.answer_rows import AnswerData, UsageRow, answer_data, load_answer_data
from tests.support.ledgers import close_usage_ledger, open_usage_ledger

MARKDOWN = ("**", "#", "|", "`")
SENTENCE = re.compile(r"(?<=[.!?])\s+")
MONEY_TOLERANCE = Decimal("0.005")


@pytest.fixture(scope="module")
def data() -> AnswerData:
    return answer_data()


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
async def ledger(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data: AnswerData
) -> AsyncIterator[SqlLedger]:
    opened = open_usage_ledger(request.param, tmp_path_factory.mktemp("answers"), request)
    await load_answer_data(opened, data)
    yield opened
    close_usage_ledger(opened)


def _names(values: Any) -> list[str]:
    return [str(value).lower() for value in values]


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def _tolerance(key: str, overrides: dict[str, float]) -> Decimal:
    if key in overrides:
        return Decimal(str(overrides[key]))
    if key.endswith("_usd"):
        return MONEY_TOLERANCE
    if key.endswith("_ms"):
        return Decimal("0.05")
    if key in ("share", "error_rate"):
        return Decimal("0.0001")
    return Decimal(0)


def _close(actual: Any, want: Any, key: str, overrides: dict[str, float] | None = None) -> None:
    if want is None or isinstance(want, (bool, str)):
        assert actual == want, (key, actual, want)
        return
    assert isinstance(actual, (int, float, Decimal)) and not isinstance(actual, bool), (key, actual)
    difference = abs(_money(actual) - Decimal(str(want)))
    assert difference <= _tolerance(key, overrides or {}) + Decimal("1e-9"), (key, actual, want)


def _check_table(actual: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(actual) == len(want), (actual, want)
    for row, wanted in zip(actual, want, strict=True):
        for key, value in wanted.items():
            assert key in row, (key, row)
            _close(row[key], value, key)


def _check_question(case: Case, question: dict[str, Any], want: Expected) -> None:
    assert question["intent"] == case.intent
    assert question["language"] == case.language
    if want.period is not None:
        start, end = want.period
        assert question["period"] == {"from": iso(start), "to": iso(end)}
    for key in ("models", "features", "providers", "target_models", "unknown"):
        assert _names(question[key]) == _names(getattr(case, key)), key
    if case.intent in CONVERSATIONAL:
        return
    assert question["target_pct"] == case.target_pct
    if case.budget is None:
        assert question["budget_usd"] is None
    elif case.budget[1] in (None, "month"):
        _close(question["budget_usd"], case.budget[0], "budget_usd")


def _check_headline_form(headline: Any) -> None:
    assert isinstance(headline, str) and headline.strip(), headline
    assert 1 <= len(SENTENCE.split(headline.strip())) <= 2, headline
    for mark in MARKDOWN:
        assert mark not in headline, (mark, headline)


def money_text(value: Any) -> str:
    amount = _money(value).quantize(CENT, rounding=ROUND_HALF_UP)
    return ("-" if amount < 0 else "") + f"${abs(amount):,.2f}"


def _number_texts(value: float) -> set[str]:
    """A latency as an English or German headline may write it."""
    english = {f"{value:,.1f}", f"{value:,.0f}", f"{value:.1f}", f"{value:.0f}"}
    german = {text.replace(",", "_").replace(".", ",").replace("_", ".") for text in english}
    return english | german


def _check_headline_figure(
    case: Case, headline: str, figures: dict[str, Any], table: list[dict[str, Any]]
) -> None:
    keys = [key for key in HEADLINE_MONEY.get(case.intent, ()) if figures[key] is not None]
    if keys:
        assert any(money_text(figures[key]) in headline for key in keys), (keys, headline)
    if case.intent == "breakdown" and table:
        assert str(table[0]["key"]) in headline and money_text(table[0]["cost_usd"]) in headline
    if case.intent == "compare":
        assert all(model.lower() in headline.lower() for model in case.models), headline
    if case.intent == "latency" and figures["p95_latency_ms"] is not None:
        assert any(text in headline for text in _number_texts(figures["p95_latency_ms"]))


def _at_most_their_sum(savings: Decimal, recommendations: list[dict[str, Any]]) -> None:
    """Combined savings apply the recommendations one after another over the same rows, so
    they never exceed the recommendations' own savings added up (each rounded to the cent)."""
    total = sum((_money(item["monthly_savings_usd"]) for item in recommendations), Decimal(0))
    assert savings <= total + CENT * len(recommendations), (savings, total)


def _check_invariants(
    case: Case, figures: dict[str, Any], want: Expected, recommendations: list[dict[str, Any]]
) -> None:
    """The figures that come from the recommendations: bounded by the spend they act on and by
    the recommendations shown, and their yes/no answers consistent with the numbers."""
    assert want.current_monthly is not None
    current = want.current_monthly
    if case.intent == "cost_reduction":
        achievable = _money(figures["achievable_monthly_savings_usd"])
        assert 0 <= achievable <= _money(figures["current_monthly_usd"])
        _at_most_their_sum(achievable, recommendations)
        if case.target_pct is None:
            assert figures["meets_target"] is None
        else:
            assert figures["meets_target"] is (
                achievable
                >= Decimal(str(case.target_pct)) / 100 * _money(figures["current_monthly_usd"])
            )
    elif case.intent == "budget":
        after = _money(figures["after_recommendations_monthly_usd"])
        assert 0 <= after <= _money(figures["current_monthly_usd"])
        _at_most_their_sum(_money(figures["current_monthly_usd"]) - after, recommendations)
        assert figures["fits"] is (after <= _money(figures["budget_usd"]))
    elif case.intent == "summary":
        achievable = _money(figures["achievable_monthly_savings_usd"])
        assert 0 <= achievable <= current + MONEY_TOLERANCE
        _at_most_their_sum(achievable, recommendations)
    elif case.intent in KIND_OF_INTENT:
        savings = _money(figures["monthly_savings_usd"])
        assert 0 <= savings <= current + MONEY_TOLERANCE
        _at_most_their_sum(
            savings,
            [item for item in recommendations if item["kind"] == KIND_OF_INTENT[case.intent]],
        )
        assert figures["worth_it"] is (savings >= max(Decimal(1), current / 100))


def _check_scope(report: dict[str, Any], rows: list[UsageRow]) -> None:
    """The report's totals and models are those of the question's scope and period."""
    totals = report["totals"]
    assert totals["requests"] == len(rows)
    assert totals["errors"] == sum(row.failed for row in rows)
    assert totals["input_tokens"] == sum(row.input_tokens for row in rows)
    assert totals["output_tokens"] == sum(row.output_tokens for row in rows)
    _close(totals["cost_usd"], sum((row.cost_usd for row in rows), Decimal(0)), "cost_usd")
    by_model = {(item["provider"], item["model"]): item for item in report["by_model"]}
    groups = grouped(rows, lambda row: (row.provider, row.model))
    assert set(by_model) == set(groups)
    for key, group in groups.items():
        assert by_model[key]["requests"] == len(group), key
        _close(
            by_model[key]["cost_usd"], sum((row.cost_usd for row in group), Decimal(0)), "cost_usd"
        )


def _check_recommendation_scope(case: Case, recommendations: list[dict[str, Any]]) -> None:
    for recommendation in recommendations:
        evidence = recommendation.get("evidence") or {}
        for key, names in (
            ("model", case.models),
            ("feature", case.features),
            ("provider", case.providers),
        ):
            if names and evidence.get(key) is not None:
                assert str(evidence[key]).lower() in _names(names), (key, recommendation["id"])


def _finders(run: RunRecord) -> list[str]:
    return [tool for _agent, tool, _arguments in run.tool_calls() if tool.startswith("find_")]


def check_answer(case: Case, run: RunRecord, want: Expected) -> None:
    report = run.report
    _check_question(case, report["question"], want)
    answer = report["answer"]
    figures, table, headline = answer["figures"], answer["table"], answer["headline"]
    _check_headline_form(headline)
    if case.intent in CONVERSATIONAL:
        assert (figures, table, report["recommendations"]) == ({}, [], [])
        assert report["by_model"] == [] and report["totals"]["requests"] == 0
        assert _finders(run) == []
        return
    assert set(REQUIRED_FIGURES[case.intent]) <= set(figures), sorted(figures)
    if case.intent in WITHOUT_FINDERS:
        assert _finders(run) == [] and report["recommendations"] == []
    for name in case.unknown:
        assert name.lower() in headline.lower(), headline
    if not case.computed:
        assert all(figures[key] is None for key in REQUIRED_FIGURES[case.intent]), figures
        return
    for key, value in want.figures.items():
        _close(figures[key], value, key, want.tolerance)
    if case.intent in TABLE_INTENTS:
        assert want.table is not None
        _check_table(table, want.table)
    else:
        assert table == [], table
    if case.intent in RECOMMENDING:
        _check_invariants(case, figures, want, report["recommendations"])
        _check_recommendation_scope(case, report["recommendations"])
    _check_headline_figure(case, headline, figures, table)
    if case.intent != "forecast":
        assert report["period"] == report["question"]["period"]
        _check_scope(report, want.rows)


def case_by_id(case_id: str) -> Case:
    return next(case for case in CASES if case.id == case_id)
