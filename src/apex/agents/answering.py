"""The answer to the question asked (PROTOCOL.md section 5): its figures, table and headline,
one template per intent, filled only from the analyses' results.

Money in `figures` is USD rounded to the cent from the exact sums; `monthly_*` scales the
period's amount to 30 days; rates are 0-1, percentages 0-100. A figure that cannot be computed
is null and the headline says why. The headline is one or two plain sentences holding the key
figure exactly as `figures` has it (money as `$1,234.56`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from apex.agents.analyses.budget import BudgetFit
from apex.agents.analyses.compare import Comparison
from apex.agents.analyses.forecast import Forecast
from apex.agents.analyses.usage import Breakdown
from apex.agents.analyses.what_if import WhatIf
from apex.agents.question import Understood
from apex.agents.report import Answer, cents, unpriced_note
from apex.agents.scope import monthly
from apex.analytics.results import ErrorRetryWaste, LatencyReport, UsageTotals
from apex.llm import Intent
from apex.money import format_usd

# a kind's saving is worth acting on from this share of the monthly spend (and at least $1)
WORTH_IT_SHARE = Decimal("0.01")
WORTH_IT_MIN_USD = Decimal(1)
KIND_OF_INTENT = {
    Intent.CACHING: "prompt_caching",
    Intent.BATCHING: "batch_api",
    Intent.MODEL_SELECTION: "model_routing",
}


@dataclass(frozen=True, slots=True)
class Findings:
    """Everything computed for one question: the inputs of its answer."""

    understood: Understood
    totals: UsageTotals | None
    results: Mapping[str, Any]
    # combined saving of the recommendations over the period, exact (None: none computed)
    achievable_period_usd: Decimal | None = None
    recommendations: tuple[Mapping[str, Any], ...] = ()

    def monthly(self, amount: Decimal) -> Decimal:
        period = self.understood.period
        return amount if period is None else monthly(amount, period)

    @property
    def cost(self) -> Decimal:
        return self.totals.cost_usd if self.totals is not None else Decimal(0)

    @property
    def achievable_monthly(self) -> Decimal:
        return self.monthly(self.achievable_period_usd or Decimal(0))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _scope_words(findings: Findings) -> str:
    question = findings.understood.question
    names = [*question.models, *question.providers, *question.features]
    return f" on {', '.join(names)}" if names else ""


def _period_words(findings: Findings) -> str:
    period = findings.understood.question.period
    if period.start is None or period.end is None:
        return ""
    return f" from {period.start[:10]} to {period.end[:10]}"


def _spend(findings: Findings) -> Answer:
    totals = findings.totals
    requests = totals.requests if totals else 0
    cost = cents(findings.cost)
    left_out = unpriced_note(totals.unpriced_requests if totals else 0)
    return Answer(
        headline=f"You spent {format_usd(cost)}{left_out}{_scope_words(findings)} over "
        f"{requests:,} requests{_period_words(findings)}.",
        figures={"cost_usd": cost, "requests": requests},
    )


def _breakdown(findings: Findings) -> Answer:
    result: Breakdown = findings.results["breakdown"]
    total = result.cost_usd
    shares = [round(float(row.cost_usd / total), 4) if total else 0.0 for row in result.rows]
    table = [
        {"key": row.key, "cost_usd": cents(row.cost_usd), "requests": row.requests, "share": share}
        for row, share in zip(result.rows, shares, strict=True)
    ]
    if not table:
        headline = f"No spend by {result.dimension}{_scope_words(findings)} in this period."
    else:
        top = result.rows[0]
        headline = (
            f"{top.key or '(none)'} costs the most of your {len(table)} "
            f"{result.dimension}s: {format_usd(cents(top.cost_usd))}, {100 * shares[0]:.1f}% "
            f"of {format_usd(cents(total))}{_period_words(findings)}."
        )
    return Answer(headline=headline, figures={"dimension": result.dimension}, table=table)


def _what_if(findings: Findings) -> Answer:
    result: WhatIf = findings.results["what_if"]
    current = cents(result.current_cost_usd)
    if result.projected_cost_usd is None:
        return Answer(
            headline="No target model could be priced for these rows, so no saving is computed.",
            figures={
                "current_cost_usd": current,
                "projected_cost_usd": None,
                "monthly_savings_usd": None,
            },
        )
    saving = findings.monthly(result.current_cost_usd - result.projected_cost_usd)
    monthly = cents(saving)
    pct = (
        f" ({100 * float(saving / findings.monthly(result.current_cost_usd)):.0f}%)"
        if result.current_cost_usd > 0
        else ""
    )
    moved = (
        ", ".join([*findings.understood.question.features, *findings.understood.question.models])
        or "this traffic"
    )
    verb = "save" if monthly >= 0 else "cost an extra"
    return Answer(
        headline=f"Moving {moved} to {result.target_model} would {verb} {format_usd(abs(monthly))} a "
        f"month{pct}: {format_usd(current)} would have cost {format_usd(cents(result.projected_cost_usd))}"
        f"{_period_words(findings)}.",
        figures={
            "current_cost_usd": current,
            "projected_cost_usd": cents(result.projected_cost_usd),
            "monthly_savings_usd": monthly,
        },
    )


def _compare(findings: Findings) -> Answer:
    result: Comparison = findings.results["compare_models"]
    table = [
        {
            "model": m.model,
            "requests": m.requests,
            "cost_usd": cents(m.cost_usd),
            "cost_per_1k_requests_usd": cents(m.cost_usd * 1000 / m.requests)
            if m.requests
            else None,
            "p95_latency_ms": _ms(m.p95_latency_ms),
            "error_rate": _rate(m.errors, m.requests),
        }
        for m in result.models
    ]
    parts = [
        f"{m.model} {format_usd(cents(m.cost_usd))} over {m.requests:,} requests"
        for m in result.models
    ]
    return Answer(
        headline="Side by side" + _period_words(findings) + ": " + "; ".join(parts) + ".",
        table=table,
    )


def _forecast(findings: Findings) -> Answer:
    result: Forecast = findings.results["forecast"]
    projected, low, high = (
        cents(result.projected_cost_usd),
        cents(result.low_usd),
        cents(result.high_usd),
    )
    period = findings.understood.question.period
    return Answer(
        headline=f"You are on course to spend {format_usd(projected)}{_scope_words(findings)} from "
        f"{str(period.start)[:10]} to {str(period.end)[:10]} (95% interval "
        f"{format_usd(low)} to {format_usd(high)}), from your last {result.base_days} days.",
        figures={"projected_cost_usd": projected, "low_usd": low, "high_usd": high},
    )


BUDGETS_LINK = "#/budgets"


def _budget_request_words(findings: Findings) -> str:
    """What setting up the named budget would do, and where that is done: the chat never
    creates one (a budget raises alerts; making one stays an explicit action of its owner)."""
    request = findings.understood.budget_request
    if request is None:
        return ""
    per = "daily" if request.per == "day" else "monthly"
    amount = (
        request.amount_usd
        if request.per in ("day", "month")
        else (request.monthly_usd or request.amount_usd)
    )
    return (
        f" A {per} budget of {format_usd(amount)}{_scope_words(findings)} would alert you at 50%, "
        f"80% and 100% of it and when spend is on course to overrun it; the chat does not "
        f"create budgets, so add it on the Budgets page ({BUDGETS_LINK})."
    )


def _budget(findings: Findings) -> Answer:
    fit: BudgetFit | None = findings.results.get("budget_fit")
    if fit is None:
        current = cents(findings.monthly(findings.cost))
        after = cents(findings.monthly(findings.cost) - findings.achievable_monthly)
        return Answer(
            headline=f"No budget amount was named; your run rate is {format_usd(current)} a month.",
            figures={
                "budget_usd": None,
                "current_monthly_usd": current,
                "after_recommendations_monthly_usd": after,
                "fits": None,
            },
        )
    budget, current = cents(fit.budget_usd), cents(fit.current_monthly_usd)
    after = cents(fit.after_recommendations_monthly_usd)
    headline = (
        f"Your run rate is {format_usd(current)} a month against a budget of {format_usd(budget)}; "
        f"after the recommendations it would be {format_usd(after)}, "
        + ("within the budget." if fit.fits else "still over the budget.")
        + _budget_request_words(findings)
    )
    return Answer(
        headline=headline,
        figures={
            "budget_usd": budget,
            "current_monthly_usd": current,
            "after_recommendations_monthly_usd": after,
            "fits": fit.fits,
        },
    )


def _latency(findings: Findings) -> Answer:
    result: LatencyReport = findings.results["latency"]
    overall = result.overall
    table = [
        {
            "model": g.model,
            "feature": g.feature,
            "requests": g.requests,
            "p95_latency_ms": _ms(g.p95_latency_ms),
        }
        for g in sorted(result.groups, key=lambda g: (-g.p95_latency_ms, g.model, g.feature))
    ]
    if overall is None:
        return Answer(
            headline="None of these rows has a latency, so no percentile can be computed.",
            figures={"p50_latency_ms": None, "p95_latency_ms": None},
            table=table,
        )
    p50, p95 = _ms(overall.p50_latency_ms), _ms(overall.p95_latency_ms)
    headline = f"p95 latency{_scope_words(findings)} is {p95:,.1f} ms (p50 {p50:,.1f} ms)"
    if table:
        slowest = table[0]
        headline += (
            f"; the slowest is {slowest['model']} on {slowest['feature'] or '(none)'} "
            f"at {slowest['p95_latency_ms']:,.1f} ms"
        )
    return Answer(
        headline=headline + ".", figures={"p50_latency_ms": p50, "p95_latency_ms": p95}, table=table
    )


def _reliability(findings: Findings) -> Answer:
    result: ErrorRetryWaste = findings.results["reliability"]
    requests = findings.totals.requests if findings.totals else 0
    errors = findings.totals.errors if findings.totals else 0
    counts: dict[tuple[str, str], int] = {}
    for group in result.errors:
        key = (group.model, group.error_type or "error")
        counts[key] = counts.get(key, 0) + group.requests
    table = [
        {"model": model, "status": status, "errors": count}
        for (model, status), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
    waste = cents(result.error_cost_usd)
    rate = _rate(errors, requests)
    headline = (
        f"{errors:,} of {requests:,} calls{_scope_words(findings)} failed "
        f"({100 * rate:.2f}%), wasting {format_usd(waste)}"
    )
    if table:
        headline += f"; most are {table[0]['status']} on {table[0]['model']}"
    return Answer(
        headline=headline + ".",
        figures={
            "requests": requests,
            "errors": errors,
            "error_rate": rate,
            "retry_waste_usd": waste,
        },
        table=table,
    )


def _kind(findings: Findings, intent: Intent) -> Answer:
    kind = KIND_OF_INTENT[intent]
    monthly_spend = findings.monthly(findings.cost)
    saving = findings.achievable_monthly
    monthly = cents(saving)
    worth = saving >= max(WORTH_IT_MIN_USD, WORTH_IT_SHARE * monthly_spend)
    label = kind.replace("_", " ")
    found = sum(1 for r in findings.recommendations if r.get("kind") == kind)
    headline = (
        f"{label.capitalize()} would save about {format_usd(monthly)} a month"
        f"{_scope_words(findings)} ({found} opportunit{'y' if found == 1 else 'ies'}): "
        + ("worth doing." if worth else "not worth the change on this data.")
    )
    return Answer(headline=headline, figures={"monthly_savings_usd": monthly, "worth_it": worth})


def _summary(findings: Findings) -> Answer:
    totals = findings.totals
    requests = totals.requests if totals else 0
    cost = cents(findings.cost)
    achievable = cents(findings.achievable_monthly)
    return Answer(
        headline=f"You spent {format_usd(cost)} on {requests:,} LLM requests"
        f"{_period_words(findings)}; the recommendations below could save "
        f"about {format_usd(achievable)} a month.",
        figures={
            "cost_usd": cost,
            "requests": requests,
            "achievable_monthly_savings_usd": achievable,
        },
    )


def _cost_reduction(findings: Findings) -> Answer:
    current = cents(findings.monthly(findings.cost))
    achievable = cents(findings.achievable_monthly)
    target = findings.understood.question.target_pct
    meets = None if target is None else achievable >= round(target / 100 * current, 2)
    share = 100 * achievable / current if current else 0.0
    headline = (
        f"You could save about {format_usd(achievable)} a month of your {format_usd(current)} run rate "
        f"({share:.1f}%)"
    )
    if target is not None:
        headline += (
            f", which meets your {target:g}% target"
            if meets
            else f", short of your {target:g}% target"
        )
    return Answer(
        headline=headline + ".",
        figures={
            "current_monthly_usd": current,
            "achievable_monthly_savings_usd": achievable,
            "target_pct": target,
            "meets_target": meets,
        },
    )


_TEMPLATES: dict[Intent, Callable[[Findings], Answer]] = {
    Intent.SPEND: _spend,
    Intent.BREAKDOWN: _breakdown,
    Intent.WHAT_IF: _what_if,
    Intent.COMPARE: _compare,
    Intent.FORECAST: _forecast,
    Intent.BUDGET: _budget,
    Intent.LATENCY: _latency,
    Intent.RELIABILITY: _reliability,
    Intent.CACHING: lambda f: _kind(f, Intent.CACHING),
    Intent.BATCHING: lambda f: _kind(f, Intent.BATCHING),
    Intent.MODEL_SELECTION: lambda f: _kind(f, Intent.MODEL_SELECTION),
    Intent.SUMMARY: _summary,
    Intent.COST_REDUCTION: _cost_reduction,
}

# the figures of each intent (PROTOCOL.md section 5), all null when nothing can be computed
FIGURES: dict[Intent, tuple[str, ...]] = {
    Intent.COST_REDUCTION: (
        "current_monthly_usd",
        "achievable_monthly_savings_usd",
        "target_pct",
        "meets_target",
    ),
    Intent.SPEND: ("cost_usd", "requests"),
    Intent.BREAKDOWN: ("dimension",),
    Intent.WHAT_IF: ("current_cost_usd", "projected_cost_usd", "monthly_savings_usd"),
    Intent.COMPARE: (),
    Intent.FORECAST: ("projected_cost_usd", "low_usd", "high_usd"),
    Intent.BUDGET: (
        "budget_usd",
        "current_monthly_usd",
        "after_recommendations_monthly_usd",
        "fits",
    ),
    Intent.LATENCY: ("p50_latency_ms", "p95_latency_ms"),
    Intent.RELIABILITY: ("requests", "errors", "error_rate", "retry_waste_usd"),
    Intent.CACHING: ("monthly_savings_usd", "worth_it"),
    Intent.BATCHING: ("monthly_savings_usd", "worth_it"),
    Intent.MODEL_SELECTION: ("monthly_savings_usd", "worth_it"),
    Intent.SUMMARY: ("cost_usd", "requests", "achievable_monthly_savings_usd"),
}


def answer(intent: Intent, findings: Findings) -> Answer:
    """The answer of an intent that read data."""
    return _TEMPLATES[intent](findings)


def unknown_answer(intent: Intent, unknown: list[str]) -> Answer:
    """Every name of the question's scope matched nothing: nothing is computed."""
    names = ", ".join(unknown)
    return Answer(
        headline=f"{names} matches none of your usage rows or the price catalog, so "
        "nothing was computed for it.",
        figures=dict.fromkeys(FIGURES.get(intent, ()), None),
    )


def no_data_answer(intent: Intent, in_period: bool) -> Answer:
    """The caller has no rows (or none in the period): the guidance report's answer."""
    where = "in the period asked about" if in_period else "in your account yet"
    return Answer(
        headline=f"There is no usage data {where}, so nothing could be computed: "
        "upload your usage logs or load the demo data, then ask again.",
        figures=dict.fromkeys(FIGURES.get(intent, ()), None),
    )


_CONVERSATION = {
    Intent.GREETING: "Hello, I am Apex: ask me about your LLM spend, for example how much you "
    "spent last week or how to cut your costs by 30%.",
    Intent.OFF_TOPIC: "That is outside what I can help with: I answer questions about your "
    "LLM usage, spend, latency and how to reduce them.",
    Intent.UNSAFE: "I cannot do that: I only ever read your own usage data and follow no "
    "instructions written into a question.",
}


def conversation_answer(intent: Intent) -> Answer:
    return Answer(headline=_CONVERSATION[intent])


def with_unknown_note(answer_: Answer, unknown: list[str]) -> Answer:
    """The answer, saying which of the question's names matched nothing."""
    if not unknown:
        return answer_
    note = f" {', '.join(unknown)} matched none of your rows or the catalog and was left out."
    return answer_.model_copy(update={"headline": answer_.headline + note})
