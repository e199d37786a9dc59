"""The built-in engine's prose: Markdown written from templates and the numbers it is given.

Every figure printed here is read from the brief's report (PROTOCOL.md section 4) or derived from
it by plain arithmetic (monthly scaling, shares, sums); nothing is invented. The user's own text is
never echoed: only bounded entities (model and feature names, periods, targets) appear, so hostile
input cannot smuggle markup or instructions into the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from apex.llm.plan import (
    ClassificationFlag,
    QuestionPlan,
    RequestCategory,
    RequestEntities,
)
from apex.llm.prose import ProseBrief, ProseKind
from apex.money import format_usd

MAX_LISTED_RECOMMENDATIONS = 5
DAYS_PER_MONTH = 30.0

_FOCUS_KINDS: dict[RequestCategory, tuple[str, ...]] = {
    RequestCategory.LATENCY: ("latency",),
    RequestCategory.MODEL_SELECTION: ("model_routing",),
    RequestCategory.CAPACITY: ("error_retry_waste", "batch_api", "latency"),
    RequestCategory.COST: ("model_routing", "prompt_caching", "batch_api"),
}
_OPENINGS: dict[RequestCategory, str] = {
    RequestCategory.COST: "Here is where your LLM spend can come down",
    RequestCategory.LATENCY: "Here is what drives your latency",
    RequestCategory.MODEL_SELECTION: "Here is what a different model mix would change",
    RequestCategory.CAPACITY: "Here is how your traffic and its limits look",
    RequestCategory.REPORTING: "Here is your usage report",
    RequestCategory.GENERAL: "Here is an overview of your LLM usage",
}
_COLUMN_HELP: dict[str, str] = {
    "latency_ms": "end-to-end latency per call (`latency_ms`), which most gateways log "
    "(LiteLLM `response_time`, OpenTelemetry span duration)",
    "ttft_ms": "time to first token (`ttft_ms`), logged by streaming clients and OpenTelemetry "
    "GenAI spans",
    "prompt_hash": "a hash of each prompt (`prompt_hash`) to find exact duplicates; hash the text "
    "before upload, the prompt itself is never needed",
    "prefix_hash": "a hash of each prompt's shared prefix (`prefix_hash`) to size provider "
    "prompt caching",
    "feature": "a `feature` or `tags` column naming the product feature behind each call",
    "cached_input_tokens": "cached input tokens (`cached_input_tokens`; OpenAI "
    "`prompt_tokens_details.cached_tokens`, Anthropic "
    "`cache_read_input_tokens`)",
    "status": "call outcome (`status` ok/error and `error_type`) to measure retry waste",
    "output_tokens": "output token counts (`output_tokens`) to judge routing and output caps",
    "input_tokens": "input token counts (`input_tokens`) to find prompt-trimming outliers",
    "end_user": "an `end_user` column to see which users drive spend",
    "timestamp": "a `timestamp` per call to place spend in time",
}
_CATEGORY_NEEDS: dict[RequestCategory, tuple[str, ...]] = {
    RequestCategory.COST: (
        "timestamp",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "prompt_hash",
        "feature",
    ),
    RequestCategory.LATENCY: ("timestamp", "latency_ms", "ttft_ms", "feature"),
    RequestCategory.MODEL_SELECTION: ("feature", "output_tokens", "status"),
    RequestCategory.CAPACITY: ("timestamp", "status", "latency_ms"),
    RequestCategory.REPORTING: ("timestamp", "feature", "end_user"),
    RequestCategory.GENERAL: ("timestamp", "input_tokens", "output_tokens", "latency_ms"),
}
# intents answered by their figures alone (PROTOCOL.md section 5): no recommendation to list
_PLAIN_INTENTS = frozenset(
    {"spend", "breakdown", "what_if", "compare", "forecast", "latency", "reliability"}
)
_SUGGESTIONS = (
    "How can I cut my AI costs by 30%?",
    "Why is my p95 latency so high?",
    "What would moving summarization to a cheaper model save?",
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _text(value: Any, limit: int = 120) -> str:
    """A report string, flattened to one plain line (it may come from data the user uploaded)."""
    cleaned = " ".join(str(value).replace("<", " ").replace(">", " ").split())
    return cleaned[:limit] if cleaned else "?"


def _period_days(report: Mapping[str, Any]) -> float | None:
    period = report.get("period")
    if not isinstance(period, Mapping):
        return None
    try:
        start = datetime.fromisoformat(str(period.get("from")))
        end = datetime.fromisoformat(str(period.get("to")))
    except ValueError:
        return None
    days = (end - start).total_seconds() / 86_400
    return days if days > 0 else None


def _period_label(report: Mapping[str, Any]) -> str | None:
    period = report.get("period")
    if not isinstance(period, Mapping) or not period.get("from") or not period.get("to"):
        return None
    return f"{_text(period.get('from'), 10)} to {_text(period.get('to'), 10)}"


def _monthly_spend(report: Mapping[str, Any]) -> float | None:
    totals = report.get("totals")
    cost = _number(totals.get("cost_usd")) if isinstance(totals, Mapping) else None
    days = _period_days(report)
    return None if cost is None or days is None else cost * DAYS_PER_MONTH / days


def _recommendations(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = report.get("recommendations")
    if not isinstance(items, list):
        return []
    valid = [item for item in items if isinstance(item, Mapping)]
    return sorted(valid, key=lambda item: -(_number(item.get("monthly_savings_usd")) or 0.0))


def _focused(
    recommendations: list[Mapping[str, Any]], category: RequestCategory
) -> list[Mapping[str, Any]]:
    kinds = _FOCUS_KINDS.get(category, ())
    first = [item for item in recommendations if item.get("kind") in kinds]
    return first + [item for item in recommendations if item.get("kind") not in kinds]


def _confidence(value: Any) -> str:
    number = _number(value)
    if number is None:
        return _text(value, 12) if value else "unrated"
    return "high" if number >= 0.75 else "medium" if number >= 0.5 else "low"


def _recommendation_line(index: int, item: Mapping[str, Any], monthly: float | None) -> str:
    savings = _number(item.get("monthly_savings_usd")) or 0.0
    parts = [
        f"{index}. **{_text(item.get('title') or item.get('kind'))}**: saves about "
        f"{format_usd(savings)}/month"
    ]
    if monthly:
        parts[0] += f" ({100 * savings / monthly:.1f}% of monthly spend)"
    elif _number(item.get("savings_pct")) is not None:
        parts[0] += f" ({_number(item.get('savings_pct')):.1f}%)"
    details = [f"{_confidence(item.get('confidence'))} confidence"]
    if item.get("risk"):
        details.append(f"{_text(item.get('risk'), 12)} risk")
    share = _number(item.get("traffic_share"))
    if share is not None:
        details.append(f"affects {100 * share:.0f}% of traffic")
    return parts[0] + "; " + ", ".join(details) + "."


def _scope(entities: RequestEntities) -> str | None:
    parts: list[str] = []
    if entities.period is not None:
        parts.append(f"period {entities.period.text}")
    if entities.models:
        parts.append("models " + ", ".join(f"`{name}`" for name in entities.models))
    if entities.providers:
        parts.append("providers " + ", ".join(f"`{name}`" for name in entities.providers))
    if entities.features:
        parts.append("features " + ", ".join(f"`{name}`" for name in entities.features))
    return "Scope: " + "; ".join(parts) + "." if parts else None


def _flag_notes(flags: Sequence[ClassificationFlag]) -> list[str]:
    notes = []
    if ClassificationFlag.OTHER_USERS_DATA in flags:
        notes.append(
            "I only ever analyse the usage data in your own account, so the part of your "
            "message about other users' or tenants' data was set aside."
        )
    if ClassificationFlag.PROMPT_INJECTION in flags:
        notes.append(
            "Your message contained instructions addressed to the assistant; they were "
            "ignored, and only the question itself was analysed."
        )
    return notes


def _spend_paragraph(report: Mapping[str, Any]) -> str | None:
    totals = report.get("totals")
    if not isinstance(totals, Mapping):
        return None
    cost = _number(totals.get("cost_usd"))
    requests = _number(totals.get("requests"))
    if cost is None or requests is None:
        return None
    label = _period_label(report)
    line = (
        f"{'From ' + label if label else 'In the period analysed'}: **{format_usd(cost)}** over "
        f"**{requests:,.0f} requests**"
    )
    tokens_in = _number(totals.get("input_tokens"))
    tokens_out = _number(totals.get("output_tokens"))
    if tokens_in is not None and tokens_out is not None:
        line += f" ({tokens_in:,.0f} input and {tokens_out:,.0f} output tokens)"
    monthly = _monthly_spend(report)
    if monthly is not None:
        line += f", a run rate of about {format_usd(monthly)}/month"
    errors = _number(totals.get("errors"))
    if errors and requests:
        line += f". {errors:,.0f} calls failed ({100 * errors / requests:.1f}%)"
    return line + "."


def _models(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rows = report.get("by_model")
    return [row for row in rows if isinstance(row, Mapping)] if isinstance(rows, list) else []


def _model_table(report: Mapping[str, Any]) -> str | None:
    rows = sorted(_models(report), key=lambda row: -(_number(row.get("cost_usd")) or 0.0))
    if not rows:
        return None
    lines = [
        "| model | provider | requests | cost | p50 ms | p95 ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows[:10]:
        cells = [
            _text(row.get("model"), 60),
            _text(row.get("provider"), 30),
            f"{_number(row.get('requests')) or 0:,.0f}",
            format_usd(_number(row.get("cost_usd")) or 0),
            _milliseconds(row.get("p50_latency_ms")),
            _milliseconds(row.get("p95_latency_ms")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _milliseconds(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:,.0f}"


def _latency_paragraph(report: Mapping[str, Any], entities: RequestEntities) -> str | None:
    rows = [row for row in _models(report) if _number(row.get("p95_latency_ms")) is not None]
    if not rows:
        return None
    rows.sort(key=lambda row: -(_number(row.get("p95_latency_ms")) or 0.0))
    slowest = rows[0]
    p95 = _number(slowest.get("p95_latency_ms")) or 0.0
    text = f"The slowest model at p95 is `{_text(slowest.get('model'), 60)}` at {p95:,.0f} ms"
    p50 = _number(slowest.get("p50_latency_ms"))
    if p50:
        text += f" (p50 {p50:,.0f} ms, so its tail is {p95 / p50:.1f}x its median)"
    if len(rows) > 1:
        fastest = rows[-1]
        text += (
            f"; the fastest is `{_text(fastest.get('model'), 60)}` at "
            f"{_number(fastest.get('p95_latency_ms')):,.0f} ms"
        )
    text += "."
    target = entities.latency_target_ms
    if target is not None:
        over = [
            _text(row.get("model"), 60)
            for row in rows
            if (_number(row.get("p95_latency_ms")) or 0) > target
        ]
        verdict = (
            f"{len(over)} model(s) are above it at p95: " + ", ".join(f"`{name}`" for name in over)
            if over
            else "every model is already within it at p95"
        )
        text += f" Against your target of {target:,.0f} ms, {verdict}."
    if entities.percentiles and any(p not in (50.0, 95.0) for p in entities.percentiles):
        text += " The report carries p50 and p95 per model; other percentiles are in the evidence."
    return text


def _capacity_paragraph(report: Mapping[str, Any]) -> str | None:
    totals = report.get("totals")
    days = _period_days(report)
    requests = _number(totals.get("requests")) if isinstance(totals, Mapping) else None
    if requests is None or days is None:
        return None
    per_day = requests / days
    text = (
        f"Traffic averaged {per_day:,.0f} requests a day ({per_day / 1_440:,.2f} a minute) "
        "over the period"
    )
    busiest = max(
        _models(report), key=lambda row: _number(row.get("requests")) or 0.0, default=None
    )
    if busiest is not None and requests:
        share = (_number(busiest.get("requests")) or 0.0) / requests
        text += f"; `{_text(busiest.get('model'), 60)}` carries {100 * share:.0f}% of it"
    errors = _number(totals.get("errors")) if isinstance(totals, Mapping) else None
    if errors is not None and requests:
        text += f". The error rate is {100 * errors / requests:.2f}%"
    return text + "."


def _target_paragraph(
    report: Mapping[str, Any], entities: RequestEntities, recommendations: list[Mapping[str, Any]]
) -> list[str]:
    monthly = _monthly_spend(report)
    combined = _figure(report, "achievable_monthly_savings_usd")
    savings = (
        combined
        if combined is not None
        else max(
            (_number(item.get("monthly_savings_usd")) or 0.0 for item in recommendations),
            default=0.0,
        )
    )
    lines: list[str] = []
    if monthly and recommendations and combined is not None:
        lines.append(
            f"Applied one after another, so that no saving is counted twice, they "
            f"save {format_usd(savings)}/month, {100 * savings / monthly:.1f}% of your run "
            "rate."
        )
    for target in entities.targets:
        if target.metric not in (None, "cost") or not monthly:
            continue
        reached = 100 * savings / monthly
        if reached >= target.percent:
            lines.append(f"That meets your {target.percent:g}% target.")
        else:
            lines.append(
                f"That falls short of your {target.percent:g}% target by "
                f"{target.percent - reached:.1f} points: about "
                f"{format_usd(monthly * (target.percent - reached) / 100)}/month more would "
                "have to come from changes the data does not show yet (for example "
                "fewer calls or shorter prompts)."
            )
    for budget in entities.budgets:
        limit = budget.monthly_usd
        if limit is None or not monthly:
            continue
        projected = monthly - savings
        verdict = "within" if projected <= limit else "still above"
        lines.append(
            f"Your budget of {format_usd(limit)}/month: today's run rate is {format_usd(monthly)}; "
            f"after these changes about {format_usd(projected)}, {verdict} the budget."
        )
    return lines


def _figure(report: Mapping[str, Any], name: str) -> float | None:
    """One of the answer's figures (PROTOCOL.md section 5), when the report has it."""
    answer = report.get("answer")
    figures = answer.get("figures") if isinstance(answer, Mapping) else None
    return _number(figures.get(name)) if isinstance(figures, Mapping) else None


def _answers_without_recommendations(report: Mapping[str, Any]) -> bool:
    """The report answers a question that recommends nothing (spend, breakdown, what-if...)."""
    question = report.get("question")
    return isinstance(question, Mapping) and question.get("intent") in _PLAIN_INTENTS


def _answer(brief: ProseBrief, classification: QuestionPlan) -> str:
    report = brief.report
    category = classification.category
    entities = classification.entities
    blocks: list[str] = [_OPENINGS.get(category, _OPENINGS[RequestCategory.GENERAL]) + "."]
    scope = _scope(entities)
    if scope:
        blocks.append(scope)
    spend = _spend_paragraph(report)
    if spend:
        blocks.append(spend)
    if _answers_without_recommendations(report):
        blocks.extend(_flag_notes(classification.flags))
        return "\n\n".join(blocks)
    if category is RequestCategory.LATENCY:
        blocks.append(
            _latency_paragraph(report, entities) or "The data has no latency figures per model yet."
        )
    if category is RequestCategory.CAPACITY:
        capacity = _capacity_paragraph(report)
        if capacity:
            blocks.append(capacity)
    if category is RequestCategory.REPORTING:
        table = _model_table(report)
        if table:
            blocks.append(table)
    recommendations = _focused(_recommendations(report), category)
    monthly = _monthly_spend(report)
    if recommendations:
        listed = recommendations[:MAX_LISTED_RECOMMENDATIONS]
        lines = [_recommendation_line(i, item, monthly) for i, item in enumerate(listed, 1)]
        heading = "Recommendations, ranked:" if len(listed) > 1 else "Recommendation:"
        blocks.append(heading + "\n" + "\n".join(lines))
        blocks.extend(_target_paragraph(report, entities, recommendations))
    else:
        blocks.append(
            "No optimization stands out in this data: no routable traffic, duplicate "
            "prompts, batchable jobs, token outliers or retry waste large enough to "
            "matter."
        )
    actions = report.get("actions")
    if isinstance(actions, list) and actions:
        changes = "one change" if len(actions) == 1 else f"{len(actions)} changes"
        blocks.append(
            f"The action plan below details {changes}, each with concrete steps, a "
            "config snippet, how to validate it and how to roll it back."
        )
    blocks.extend(_flag_notes(classification.flags))
    return "\n\n".join(blocks)


def _needs(category: RequestCategory, missing: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys([*missing, *_CATEGORY_NEEDS.get(category, ())]))
    return [f"- {_COLUMN_HELP.get(name, f'`{_text(name, 40)}`')}" for name in names]


def _guidance(brief: ProseBrief, classification: QuestionPlan) -> str:
    category = classification.category
    blocks = [
        "I could not find usage data in your account"
        + (f" for {classification.entities.period.text}" if classification.entities.period else "")
        + ", so there is nothing to compute yet: every figure I give comes from your own rows and "
        "the price catalog.",
        "To get a quantified answer:\n"
        "1. Upload your LLM usage logs: CSV or JSONL with one row per call, OpenTelemetry GenAI "
        "spans (OTLP/JSON), or a LiteLLM spend-log export. Bad rows are reported with their line "
        "numbers and the good ones are kept.\n"
        "2. Or load the demo data to see a full report on a realistic workload first.\n"
        "3. Then ask again in this thread.",
        "Each row needs at least `timestamp`, `provider`, `model`, `input_tokens` and "
        "`output_tokens` (or `cost_usd`). For this question these columns matter most:\n"
        + "\n".join(_needs(category, brief.missing)),
    ]
    blocks.extend(_flag_notes(classification.flags))
    return "\n\n".join(blocks)


def _partial(brief: ProseBrief, classification: QuestionPlan) -> str:
    blocks = ["Your data answers part of this question; here is what it supports."]
    spend = _spend_paragraph(brief.report)
    if spend:
        blocks.append(spend)
    table = _model_table(brief.report)
    if table:
        blocks.append(table)
    recommendations = _recommendations(brief.report)
    if recommendations:
        monthly = _monthly_spend(brief.report)
        listed = recommendations[:MAX_LISTED_RECOMMENDATIONS]
        blocks.append(
            "What can already be computed:\n"
            + "\n".join(_recommendation_line(i, item, monthly) for i, item in enumerate(listed, 1))
        )
    if brief.missing:
        blocks.append(
            "Missing from the data, and how to get it:\n"
            + "\n".join(
                f"- {_COLUMN_HELP.get(name, f'`{_text(name, 40)}`')}" for name in brief.missing
            )
        )
    blocks.append("Add these columns to your next upload and ask again for the full analysis.")
    blocks.extend(_flag_notes(classification.flags))
    return "\n\n".join(blocks)


def _off_topic(classification: QuestionPlan) -> str:
    blocks = [
        "I'm Apex: I analyse your LLM usage data (spend, latency, model choice, capacity) "
        "and answer with a plan quantified from your own rows. That request is outside what "
        "I can help with.",
        "Try for example:\n" + "\n".join(f"- {question}" for question in _SUGGESTIONS),
    ]
    blocks.extend(_flag_notes(classification.flags))
    return "\n\n".join(blocks)


def render_brief(brief: ProseBrief, classification: QuestionPlan) -> str:
    """The prose for a brief; `classification` is the brief's own, or one made from its question."""
    if classification.category is RequestCategory.OFF_TOPIC:
        return _off_topic(classification)
    if brief.kind is ProseKind.GUIDANCE:
        return _guidance(brief, classification)
    if brief.kind is ProseKind.PARTIAL:
        return _partial(brief, classification)
    return _answer(brief, classification)


def render_reply(classification: QuestionPlan) -> str:
    """A reply without computed numbers: what the request was understood as, and what comes next."""
    if classification.category is RequestCategory.OFF_TOPIC:
        return _off_topic(classification)
    blocks = [f"I read this as a {classification.category.value.replace('_', ' ')} question."]
    scope = _scope(classification.entities)
    if scope:
        blocks.append(scope)
    blocks.append(
        "The numbers come from your usage data and the price catalog: ask in a thread "
        "with data loaded and the analysis runs on your own rows."
    )
    blocks.extend(_flag_notes(classification.flags))
    return "\n\n".join(blocks)
