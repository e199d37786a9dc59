"""The answers evaluation through a language-model provider: the same figures as the built-in
engine when an OpenAI-compatible or an Anthropic model plans the analyses and writes the prose.

Each provider is built from Settings as the app builds it (the adapter behind its guard, chained
to the built-in engine) and pointed at a local stub of its API speaking the real wire format. The
stub answers as a model that understood the question would: the question plan as structured
output, tool calls naming the analyses the intent needs with the question's own arguments, then
prose whose first paragraph is a headline quoting the key figure. The figures are checked against
the ones recomputed from the loaded rows (tests/support/answer_cases.py), and against a run of the
built-in engine on the same question, on DuckDB and on chDB. Then the ways a provider can go
wrong: tool arguments that name another period or a tenant, a call the question gives no
arguments to, an invented number in the prose, a failed tool-calling request, and more tool calls
than a run reads.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from apex.analytics.ledger import SqlLedger
from apex.llm import LanguageModel
from apex.llm.classify import classify_request
from apex.llm.factory import build_language_model
from tests.support.agent_harness import RunRecord, run_workflow, supervisor
from tests.support.answer_cases import (
    FORECAST_BASE_DAYS,
    Case,
    Expected,
    Period,
    expected,
    iso,
    newest_row,
    resolve,
)
from tests.support.answer_checks import case_by_id, check_answer, data, ledger, money_text  # noqa: F401 (fixtures)
from tests.support.answer_rows import OTHER_TENANT, USER, AnswerData
from tests.support.llm_stubs import Failure, LlmStub, Reply, Structured, Text, ToolCalls, Usage
from tests.support.protocol_checks import check_run_stream

PROVIDERS = ("openai", "anthropic")
STUB_MODEL = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
# every analysis of the registry, as the tool-calling request must offer them
REGISTRY = frozenset(
    {
        "usage_totals",
        "usage_by_model",
        "breakdown",
        "what_if",
        "compare_models",
        "forecast",
        "latency",
        "reliability",
    }
)
# read for every answer whatever the model asks: the report's totals and spend by model
ALWAYS_READ = frozenset({"usage_totals", "usage_by_model"})
MAX_TOOL_CALLS = 8
# the analyses a model that understood the question asks for; an intent answered by
# recommendations reads what its finders need, and the model is not asked
ASKED: dict[str, tuple[str, ...]] = {
    "spend": ("usage_totals",),
    "breakdown": ("breakdown",),
    "what_if": ("what_if",),
    "compare": ("compare_models",),
    "forecast": ("forecast",),
    "latency": ("latency",),
    "reliability": ("reliability",),
    "budget": (),
    "caching": (),
    "batching": (),
    "model_selection": (),
    "summary": (),
    "cost_reduction": (),
}
# the coarse category a model names beside the intent
CATEGORY = {
    "spend": "reporting",
    "breakdown": "reporting",
    "summary": "reporting",
    "what_if": "model_selection",
    "compare": "model_selection",
    "model_selection": "model_selection",
    "latency": "latency",
    "forecast": "capacity",
    "reliability": "cost",
    "caching": "cost",
    "batching": "cost",
    "cost_reduction": "cost",
    "budget": "cost",
}
PROVIDER_CASE_IDS = (
    "spend-last-week",
    "spend-model-feature-named-month-de",
    "breakdown-feature",
    "breakdown-model-last-week-de",
    "what-if-feature-model",
    "what-if-last-month-de",
    "compare-two",
    "compare-last-week-de",
    "forecast-provider",
    "forecast-next-month-de",
    "budget-weekly-feature",
    "latency-model-last-week",
    "reliability-feature-last-week-de",
    "caching-feature-de",
    "batching-feature",
    "model-selection-feature",
    "summary-last-month-de",
    "cost-reduction-target",
)
CORRECTED = "the question's period and scope are read"
PROVIDER_CASES = tuple(case_by_id(case_id) for case_id in PROVIDER_CASE_IDS)


@pytest.fixture(scope="module")
def builtin_runs(ledger: SqlLedger) -> dict[str, RunRecord]:
    """The built-in engine's run of each question on this ledger, made once for both
    providers."""
    return {}


@dataclass
class Configured:
    """A provider as the app configures it, and the stub its adapter talks to."""

    name: str
    stub: LlmStub
    model: LanguageModel


@pytest.fixture(params=PROVIDERS)
async def provider(
    request: pytest.FixtureRequest, make_settings: Callable[..., Any]
) -> AsyncIterator[Configured]:
    name = request.param
    stub: LlmStub = request.getfixturevalue(f"{name}_stub")
    settings = make_settings(
        llm_provider=name,
        llm_model=STUB_MODEL[name],
        llm_base_url=stub.base_url + ("/v1" if name == "openai" else ""),
        llm_max_attempts=1,
    )
    model = build_language_model(settings)
    yield Configured(name, stub, model)
    await model.aclose()


def _requested_period(case: Case, today: date, newest: datetime) -> dict[str, Any] | None:
    """The case's period as a model fills `entities.period` of the question plan."""
    period = case.period
    if period is None or period.kind == "default":
        return None
    if period.kind == "last_days":
        return {"text": f"last {period.n} days", "last_days": period.n}
    if period.kind in ("named_month", "future_month"):
        start, _end = resolve(period, today, newest)
        named = {"text": start.strftime("%B"), "month": start.month}
        return named | ({"year": start.year} if period.kind == "future_month" else {})
    return {"text": period.kind.replace("_", " "), "calendar": period.kind}


def plan_of(case: Case, today: date, newest: datetime) -> dict[str, Any]:
    """The question plan a model that understood the question returns, from the case itself."""
    entities: dict[str, Any] = {
        "models": list(case.models),
        "target_models": list(case.target_models),
        "providers": list(case.providers),
        "features": list(case.features),
        "period": _requested_period(case, today, newest),
        "dimension": case.dimension,
    }
    if case.target_pct is not None:
        entities["targets"] = [
            {"percent": case.target_pct, "metric": "cost", "text": f"{case.target_pct:g}%"}
        ]
    if case.budget is not None:
        amount, per = case.budget
        entities["budgets"] = [
            {"amount_usd": float(amount), "per": per, "text": f"${amount} per {per}"}
        ]
    return {
        "category": CATEGORY[case.intent],
        "intent": case.intent,
        "language": case.language,
        "confidence": 0.9,
        "entities": entities,
    }


def question_arguments(case: Case, want: Expected, name: str, newest: datetime) -> dict[str, Any]:
    """Analysis `name`'s arguments for the question, as its tool event shows them: the period
    and scope asked about, and what the analysis adds (a forecast reads the 28 whole days that
    end with the newest row's day)."""
    assert want.period is not None
    start, end = want.period
    arguments: dict[str, Any] = {
        "from": iso(start),
        "to": iso(end),
        "models": list(case.models),
        "providers": list(case.providers),
        "features": list(case.features),
    }
    if name == "breakdown":
        arguments["dimension"] = case.dimension or "feature"
    elif name == "what_if":
        arguments["target_model"] = case.target_models[0]
    elif name == "forecast":
        base_end = datetime.combine(
            newest.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC
        )
        arguments.update(
            {
                "from": iso(base_end - timedelta(days=FORECAST_BASE_DAYS)),
                "to": iso(base_end),
                "forecast_from": iso(start),
                "forecast_to": iso(end),
            }
        )
    return arguments


# a language: (the headline, the rest of the prose)
Wording = dict[str, tuple[str, str]]


@dataclass(frozen=True)
class Facts:
    """What a model is told about the answer: the figures and table recomputed from the rows,
    and the built-in engine's figures for the savings of the recommendations, which the rows
    alone do not give."""

    case: Case
    figures: dict[str, Any]
    table: list[dict[str, Any]]
    saved: dict[str, Any]

    def money(self, key: str) -> str:
        return money_text(self.figures[key])


def _spend(facts: Facts) -> Wording:
    cost, requests = facts.money("cost_usd"), facts.figures["requests"]
    return {
        "en": (
            f"You spent {cost} in the period you asked about.",
            f"That covers {requests:,} requests.",
        ),
        "de": (
            f"Sie haben im gefragten Zeitraum {cost} ausgegeben.",
            f"Das sind {requests:,} Anfragen.",
        ),
    }


def _breakdown(facts: Facts) -> Wording:
    top = facts.table[0]
    cost = money_text(top["cost_usd"])
    total = money_text(sum(row["cost_usd"] for row in facts.table))
    return {
        "en": (
            f"{top['key']} costs the most at {cost} of {total}.",
            "The table lists every entry, costliest first.",
        ),
        "de": (
            f"{top['key']} kostet am meisten: {cost} von {total}.",
            "Die Tabelle zeigt alle Einträge, die teuersten zuerst.",
        ),
    }


def _what_if(facts: Facts) -> Wording:
    saving = money_text(abs(facts.figures["monthly_savings_usd"]))
    current, projected = facts.money("current_cost_usd"), facts.money("projected_cost_usd")
    target = facts.case.target_models[0]
    return {
        "en": (
            f"Moving to {target} would save {saving} a month.",
            f"The same traffic cost {current} and would have cost {projected}.",
        ),
        "de": (
            f"Der Wechsel zu {target} würde {saving} im Monat sparen.",
            f"Derselbe Verkehr kostete {current} und hätte {projected} gekostet.",
        ),
    }


def _compare(facts: Facts) -> Wording:
    sides = ", ".join(
        f"{row['model']} {money_text(row['cost_usd'])} ({row['requests']:,})" for row in facts.table
    )
    return {
        "en": (f"Side by side: {sides}.", "The table adds latency and error rates."),
        "de": (f"Im Vergleich: {sides}.", "Die Tabelle zeigt auch Latenz und Fehlerquote."),
    }


def _forecast(facts: Facts) -> Wording:
    projected = facts.money("projected_cost_usd")
    return {
        "en": (
            f"You are on course to spend {projected} in that period.",
            "The interval comes from the daily spend of the last four weeks.",
        ),
        "de": (
            f"Voraussichtlich geben Sie im gefragten Zeitraum {projected} aus.",
            "Die Spanne beruht auf den täglichen Kosten der letzten vier Wochen.",
        ),
    }


def _budget(facts: Facts) -> Wording:
    current, budget = facts.money("current_monthly_usd"), facts.money("budget_usd")
    return {
        "en": (
            f"Your run rate is {current} a month against a budget of {budget}.",
            "The recommendations below show what would bring it down.",
        )
    }


def _latency(facts: Facts) -> Wording:
    # quoted as the report gives them (to 0.1 ms, which check_answer holds to the rows): the
    # rows' own value can sit on a rounding edge (1,160.05) the report rounds the other way
    p50, p95 = facts.saved["p50_latency_ms"], facts.saved["p95_latency_ms"]
    return {"en": (f"p95 latency is {p95:,.1f} ms.", f"The median is {p50:,.1f} ms.")}


def _reliability(facts: Facts) -> Wording:
    errors, requests = facts.figures["errors"], facts.figures["requests"]
    waste = facts.money("retry_waste_usd")
    return {
        "en": (
            f"{errors:,} of {requests:,} calls failed, wasting {waste}.",
            "The table shows the failures by model and kind.",
        ),
        "de": (
            f"{errors:,} von {requests:,} Aufrufen sind fehlgeschlagen und haben {waste} gekostet.",
            "Die Tabelle zeigt die Fehler nach Modell und Art.",
        ),
    }


def _kind(facts: Facts) -> Wording:
    saving = money_text(facts.saved["monthly_savings_usd"])
    return {
        "en": (
            f"This would save about {saving} a month.",
            "The recommendations below say where and how.",
        ),
        "de": (
            f"Das würde etwa {saving} im Monat sparen.",
            "Die Empfehlungen unten zeigen, wo und wie.",
        ),
    }


def _summary(facts: Facts) -> Wording:
    cost, requests = facts.money("cost_usd"), facts.figures["requests"]
    achievable = money_text(facts.saved["achievable_monthly_savings_usd"])
    return {
        "en": (
            f"You spent {cost}; the recommendations could save about {achievable} a month.",
            f"That was {requests:,} requests.",
        ),
        "de": (
            f"Sie haben {cost} ausgegeben; die Empfehlungen könnten etwa {achievable} "
            "im Monat sparen.",
            f"Das waren {requests:,} Anfragen.",
        ),
    }


def _cost_reduction(facts: Facts) -> Wording:
    current = facts.money("current_monthly_usd")
    achievable = money_text(facts.saved["achievable_monthly_savings_usd"])
    return {
        "en": (
            f"You could save about {achievable} a month of your {current} run rate.",
            "The recommendations below are ordered by saving.",
        )
    }


PROSE: dict[str, Callable[[Facts], Wording]] = {
    "spend": _spend,
    "breakdown": _breakdown,
    "what_if": _what_if,
    "compare": _compare,
    "forecast": _forecast,
    "budget": _budget,
    "latency": _latency,
    "reliability": _reliability,
    "caching": _kind,
    "batching": _kind,
    "model_selection": _kind,
    "summary": _summary,
    "cost_reduction": _cost_reduction,
}


def prose(question: Question, builtin: RunRecord) -> str:
    """The prose a model writes in the question's language: a headline quoting the key figure
    formatted as the protocol does, a blank line, then the rest with only figures of the
    answer."""
    case, want = question.case, question.want
    facts = Facts(case, want.figures, want.table or [], builtin.report["answer"]["figures"])
    headline, rest = PROSE[case.intent](facts)[case.language]
    return f"{headline}\n\n{rest}"


@dataclass(frozen=True)
class Question:
    """A case asked today, with the answer the loaded rows give it."""

    case: Case
    today: date
    newest: datetime
    want: Expected

    @property
    def text(self) -> str:
        return self.case.question(self.today)

    def plan(self) -> Structured:
        return Structured(
            plan_of(self.case, self.today, self.newest), Usage(input_tokens=900, output_tokens=60)
        )

    def arguments(self, name: str) -> dict[str, Any]:
        return question_arguments(self.case, self.want, name, self.newest)

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """The calls a model that understood the question makes."""
        return [(name, self.arguments(name)) for name in ASKED[self.case.intent]]


def asked(case: Case, data: AnswerData) -> Question:
    today = datetime.now(UTC).date()
    return Question(case, today, newest_row(data.rows), expected(case, data.rows, today))


async def builtin_run(
    ledger: SqlLedger, runs: dict[str, RunRecord], question: Question
) -> RunRecord:
    if question.case.id not in runs:
        runs[question.case.id] = await run_workflow(supervisor(ledger), USER, question.text)
    return runs[question.case.id]


async def provider_run(
    ledger: SqlLedger, provider: Configured, text: str, *replies: Reply
) -> RunRecord:
    provider.stub.script(*replies)
    run = await run_workflow(supervisor(ledger, model=provider.model), USER, text)
    check_run_stream(run.events, run_id=run.ctx.run_id, user_id=USER, state="completed")
    return run


def thoughts(run: RunRecord) -> list[str]:
    return [event["payload"]["thought"] for event in run.of_type("agent_thinking")]


def read_analyses(run: RunRecord) -> list[tuple[str, dict[str, Any]]]:
    """The registry's analyses the run read, with their arguments as their events show them."""
    return [
        (tool, arguments)
        for agent, tool, arguments in run.tool_calls()
        if agent == "data" and tool in REGISTRY
    ]


def offered_tools(body: dict[str, Any]) -> set[str]:
    return {
        tool["function"]["name"] if "function" in tool else tool["name"]
        for tool in body.get("tools", [])
    }


def _same_answer(run: RunRecord, builtin: RunRecord) -> None:
    for key in ("figures", "table"):
        assert run.report["answer"][key] == builtin.report["answer"][key], key
    for key in ("question", "period", "totals", "by_model", "recommendations"):
        assert run.report[key] == builtin.report[key], key


@pytest.mark.parametrize("case", PROVIDER_CASES, ids=[case.id for case in PROVIDER_CASES])
async def test_a_provider_plans_with_tools_and_gets_the_same_answer(
    ledger: SqlLedger,
    data: AnswerData,
    builtin_runs: dict[str, RunRecord],
    provider: Configured,
    case: Case,
) -> None:
    question = asked(case, data)
    builtin = await builtin_run(ledger, builtin_runs, question)
    calls = question.calls()
    chosen = [ToolCalls(calls, Usage(input_tokens=2_400, output_tokens=90))] if calls else []
    written = prose(question, builtin)
    run = await provider_run(
        ledger,
        provider,
        question.text,
        question.plan(),
        *chosen,
        Text(written, Usage(input_tokens=3_000, output_tokens=120)),
    )
    check_answer(case, run, question.want)
    _same_answer(run, builtin)
    read = read_analyses(run)
    for call in calls:
        assert call in read, (call, read)
    assert {name for name, _arguments in read} == {name for name, _ in calls} | ALWAYS_READ
    said = thoughts(run)
    assert not any(CORRECTED in thought or "refused" in thought for thought in said), said
    headline, rest = written.split("\n\n")
    assert run.report["answer"]["headline"] == headline
    assert run.report["markdown"].startswith(headline + "\n\n") and rest in run.report["markdown"]
    requests = provider.stub.requests
    assert [request.body["model"] for request in requests] == [STUB_MODEL[provider.name]] * (
        2 + len(chosen)
    )
    assert [offered_tools(request.body) for request in requests[1:-1]] == [REGISTRY] * len(chosen)
    asked_tools = [tool for _agent, tool, _args in run.tool_calls() if tool == "choose_analyses"]
    assert len(asked_tools) == len(chosen)


async def test_tool_arguments_cannot_change_the_period_or_whose_rows_are_read(
    ledger: SqlLedger, data: AnswerData, provider: Configured
) -> None:
    question = asked(case_by_id("breakdown-feature-of-provider"), data)
    assert question.want.period is not None
    own = {name: question.arguments(name) for name in ("usage_totals", "breakdown")}
    elsewhere = {
        **own["usage_totals"],
        "providers": [],
        "from": iso(question.want.period[0] - timedelta(days=90)),
    }
    other_tenant = {**own["breakdown"], "tenant_id": OTHER_TENANT}
    run = await provider_run(
        ledger,
        provider,
        question.text,
        question.plan(),
        ToolCalls([("usage_totals", elsewhere), ("breakdown", other_tenant)]),
        Text("Here is where the money went."),
    )
    check_answer(question.case, run, question.want)
    read = read_analyses(run)
    assert ("usage_totals", own["usage_totals"]) in read and ("breakdown", own["breakdown"]) in read
    said = thoughts(run)
    assert any("usage_totals" in thought and CORRECTED in thought for thought in said), said
    assert any("breakdown" in thought and "refused" in thought for thought in said), said
    for _agent, _tool, arguments in run.tool_calls():
        assert not any("tenant" in key or "user" in key for key in arguments), arguments
        assert OTHER_TENANT not in json.dumps(arguments), arguments


async def test_a_provider_that_invents_a_number_gets_the_builtin_prose(
    ledger: SqlLedger, data: AnswerData, builtin_runs: dict[str, RunRecord], provider: Configured
) -> None:
    """The plan is the built-in engine's own, so the built-in prose that replaces the invented
    one is word for word the built-in run's."""
    question = asked(case_by_id("spend-last-week"), data)
    builtin = await builtin_run(ledger, builtin_runs, question)
    invented, rest = "$987,654.32", "That is more than ever before."
    run = await provider_run(
        ledger,
        provider,
        question.text,
        Structured(classify_request(question.text).model_dump(mode="json")),
        ToolCalls(question.calls()),
        Text(f"You spent {invented} last week.\n\n{rest}"),
    )
    check_answer(question.case, run, question.want)
    assert run.report["answer"]["headline"] == builtin.report["answer"]["headline"]
    assert run.report["markdown"] == builtin.report["markdown"]
    assert invented not in run.report["markdown"] and rest not in run.report["markdown"]
    said = thoughts(run)
    assert any(invented[1:] in thought and "built-in" in thought for thought in said), said


async def test_a_failed_tool_choice_reads_what_the_builtin_engine_reads(
    ledger: SqlLedger, data: AnswerData, builtin_runs: dict[str, RunRecord], provider: Configured
) -> None:
    question = asked(case_by_id("what-if-feature-model"), data)
    builtin = await builtin_run(ledger, builtin_runs, question)
    written = prose(question, builtin)
    run = await provider_run(
        ledger, provider, question.text, question.plan(), Failure(503), Text(written)
    )
    check_answer(question.case, run, question.want)
    _same_answer(run, builtin)
    assert sorted(read_analyses(run), key=str) == sorted(read_analyses(builtin), key=str)
    assert any("did not answer" in thought for thought in thoughts(run))
    assert run.report["answer"]["headline"] == written.split("\n\n")[0]
    assert len(provider.stub.requests) == 3


async def test_only_the_first_eight_tool_calls_are_read(
    ledger: SqlLedger, data: AnswerData, provider: Configured
) -> None:
    question = asked(case_by_id("breakdown-feature"), data)
    arguments = {
        name: question.arguments(name)
        for name in (
            "usage_totals",
            "usage_by_model",
            "breakdown",
            "latency",
            "reliability",
            "compare_models",
        )
    }
    arguments["what_if"] = {**arguments["usage_totals"], "target_model": "gpt-4o-mini"}
    order = (
        "usage_totals",
        "usage_by_model",
        "breakdown",
        "usage_totals",
        "usage_by_model",
        "breakdown",
        "latency",
        "reliability",
        "what_if",
        "compare_models",
    )
    assert len(order) > MAX_TOOL_CALLS
    run = await provider_run(
        ledger,
        provider,
        question.text,
        question.plan(),
        ToolCalls([(name, arguments[name]) for name in order]),
        Text("Here is where the money went."),
    )
    check_answer(question.case, run, question.want)
    read = {name for name, _arguments in read_analyses(run)}
    assert read == set(order[:MAX_TOOL_CALLS])
    assert not read & set(order[MAX_TOOL_CALLS:])
    said = thoughts(run)
    assert any(
        f"{len(order)}" in thought and f"first {MAX_TOOL_CALLS}" in thought for thought in said
    ), said


async def test_a_call_the_question_has_no_arguments_for_does_not_fail_the_run(
    ledger: SqlLedger, data: AnswerData, provider: Configured
) -> None:
    """A model may ask for any analysis of the registry: a forecast asked about a spend question
    (which names no period to forecast) must not stop the run or change its figures."""
    question = asked(case_by_id("spend-last-week"), data)
    own = question.arguments("usage_totals")
    start, end = resolve(Period("next_month"), question.today, question.newest)
    run = await provider_run(
        ledger,
        provider,
        question.text,
        question.plan(),
        ToolCalls(
            [
                ("usage_totals", own),
                ("forecast", {**own, "forecast_from": iso(start), "forecast_to": iso(end)}),
            ]
        ),
        Text("Here is your spend."),
    )
    check_answer(question.case, run, question.want)
    assert ("usage_totals", own) in read_analyses(run)
