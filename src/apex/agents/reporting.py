"""The reporting agent: the answer to the question, then the report's Markdown.

Numbers come only from the analyses and the optimizations computed: `answering` fills the
intent's template (headline, figures, table), and the language model writes prose around the
report from a `ProseBrief` (the built-in engine fills templates with it). Prose from a provider
may only quote the report's own numbers: one that writes any other number is replaced by the
built-in engine's prose, and the agent says why. The Markdown is the headline, how the question
was understood, the answer's table, the prose, then the recommendations, the action plan and the
spend by model, all rendered from the one `Report`.
"""

from __future__ import annotations

import re
from typing import Any

from apex.agents.report import Report, unpriced_note
from apex.execution.workflow import AgentScope
from apex.llm import (
    BuiltinModel,
    ChatResponse,
    LanguageModel,
    ProseBrief,
    ProseKind,
    QuestionPlan,
    prose_messages,
)
from apex.money import format_usd

# a number as prose writes it: 1,234.56 / 12.5 / 30 (the "$" or "%" around it does not matter)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
# numbers any prose may write without quoting the report: list numbering, "p95", "30 days"...
_FREE_NUMBERS = frozenset({str(n) for n in range(0, 13)} | {"30", "50", "95", "99", "100"})


def _cell(value: Any) -> str:
    text = " ".join(str(value).replace("|", "/").replace("<", " ").replace(">", " ").split())
    return text[:80] or "?"


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "n/a"}[value]
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _cell(value)


def _understood(report: Report) -> str:
    question = report.question
    parts = [question.intent.value.replace("_", " ")]
    if question.period.start and question.period.end:
        parts.append(f"{question.period.start[:10]} to {question.period.end[:10]}")
    for label, names in (
        ("models", question.models),
        ("moving to", question.target_models),
        ("providers", question.providers),
        ("features", question.features),
    ):
        if names:
            parts.append(f"{label} " + ", ".join(f"`{_cell(name)}`" for name in names))
    if question.target_pct is not None:
        parts.append(f"target {question.target_pct:g}%")
    if question.budget_usd is not None:
        parts.append(f"budget {format_usd(question.budget_usd)}/month")
    line = "*Understood as: " + "; ".join(parts) + ".*"
    if question.unknown:
        line += (
            "\n\n**Not found in your data or the price catalog:** "
            + ", ".join(f"`{_cell(name)}`" for name in question.unknown)
            + "."
        )
    return line


def _answer_table(report: Report) -> str:
    rows = report.answer.table
    figures = {
        name: value for name, value in report.answer.figures.items() if not isinstance(value, str)
    }
    blocks = []
    if figures:
        blocks.append(
            "\n".join(
                ["| figure | value |", "|---|---:|"]
                + [
                    f"| {name.replace('_', ' ')} | {_value(value)} |"
                    for name, value in figures.items()
                ]
            )
        )
    if rows:
        columns = list(rows[0])
        lines = [
            "| " + " | ".join(c.replace("_", " ") for c in columns) + " |",
            "|" + "|".join("---" if isinstance(rows[0][c], str) else "---:" for c in columns) + "|",
        ]
        lines += ["| " + " | ".join(_value(row.get(c)) for c in columns) + " |" for row in rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_sections(report: Report) -> str:
    """The recommendations, the action plan and the spend by model, as Markdown."""
    blocks: list[str] = []
    if report.recommendations:
        lines = [
            "## Recommendations",
            "",
            "| # | recommendation | $/month | % of spend | confidence | risk | traffic |",
            "|---:|---|---:|---:|---:|---|---:|",
        ]
        lines += [
            f"| {i} | {_cell(r.title)} | {format_usd(r.monthly_savings_usd)} | "
            f"{r.savings_pct:.2f}% | {r.confidence:.2f} | {r.risk} | "
            f"{100 * r.traffic_share:.1f}% |"
            for i, r in enumerate(report.recommendations, 1)
        ]
        blocks.append("\n".join(lines))
    if report.actions:
        lines = ["## Action plan"]
        for action in report.actions:
            lines += ["", f"### {_cell(action.title)}", ""]
            lines += [f"{i}. {step}" for i, step in enumerate(action.steps, 1)]
            lines += [
                "",
                f"```{action.config_format}",
                action.config_snippet,
                "```",
                "",
                f"**Validate:** {action.validation}",
                "",
                f"**Roll back:** {action.rollback}",
            ]
        blocks.append("\n".join(lines))
    if report.by_model:
        period = report.period
        lines = [
            f"## Spend by model ({str(period.start)[:10]} to {str(period.end)[:10]})",
            "",
            "| provider | model | requests | cost | p50 ms | p95 ms |",
            "|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {_cell(m.provider)} | {_cell(m.model)} | {m.requests:,} | "
            f"{'unpriced' if m.cost_usd is None else format_usd(m.cost_usd)} | "
            f"{_ms(m.p50_latency_ms)} | {_ms(m.p95_latency_ms)} |"
            for m in report.by_model
        ]
        totals = report.totals
        lines += [
            "",
            f"Total: {totals.requests:,} requests, {format_usd(totals.cost_usd)}"
            f"{unpriced_note(totals.unpriced_requests)}, {totals.errors:,} errors.",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def invented_numbers(prose: str, allowed_text: str) -> list[str]:
    """Numbers in `prose` that appear nowhere in `allowed_text` (the report as rendered)."""
    allowed = {match.group(0) for match in _NUMBER.finditer(allowed_text)}
    allowed |= {number.replace(",", "") for number in allowed}
    return [
        number
        for number in dict.fromkeys(m.group(0) for m in _NUMBER.finditer(prose))
        if number not in allowed
        and number.replace(",", "") not in allowed
        and number not in _FREE_NUMBERS
    ]


_MARKDOWN = re.compile(r"[*#|`_\[\]<>]")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def key_figure(headline: str) -> str | None:
    """The figure a headline turns on: its first amount of money, else its first number."""
    money_ = re.search(r"-?\$[\d,]+\.\d{2}", headline)
    if money_:
        return money_.group(0)
    numbers = [m.group(0) for m in _NUMBER.finditer(headline) if m.group(0) not in _FREE_NUMBERS]
    return numbers[0] if numbers else None


def is_headline(text: str, key: str) -> bool:
    """One or two plain sentences holding the key figure."""
    text = text.strip()
    return (
        0 < len(text) <= 400
        and key in text
        and not _MARKDOWN.search(text)
        and "\n" not in text
        and len(_SENTENCE_END.findall(text)) <= 2
    )


async def _provider_headline(agent: AgentScope, report: Report, prose: str) -> tuple[Report, str]:
    """The provider's first paragraph as the headline when it is one (plain, short, holding the
    template headline's key figure); otherwise the template's headline stays."""
    key = key_figure(report.answer.headline)
    first, _, rest = prose.partition("\n\n")
    if key is None or not is_headline(first, key):
        return report, prose
    await agent.think("The language model wrote the headline; it quotes the computed figure.")
    answer = report.answer.model_copy(update={"headline": first.strip()})
    return report.model_copy(update={"answer": answer}), rest.strip()


class ReportingAgent:
    name = "reporting"
    task = "Answer the question and write the report"

    def __init__(self, model: LanguageModel) -> None:
        self.model = model

    async def run(
        self,
        agent: AgentScope,
        *,
        kind: ProseKind,
        classification: QuestionPlan,
        report: Report,
        missing: list[str],
        extra: str = "",
    ) -> Report:
        await agent.think(
            {
                ProseKind.ANSWER: "Writing the answer from the computed numbers.",
                ProseKind.PARTIAL: "Writing what the data supports and what it lacks.",
                ProseKind.GUIDANCE: "Writing what to upload to get an answer.",
            }[kind]
        )
        await agent.think(f"Answer: {report.answer.headline}")
        brief = ProseBrief(
            kind=kind,
            question=agent.context.text[:20_000],
            classification=classification,
            report=report.to_protocol(),
            missing=missing,
        )

        async def write_summary(**_arguments: Any) -> ChatResponse[None]:
            return await self.model.chat(prose_messages(brief))

        agent.context.tools.register(
            "write_summary",
            write_summary,
            include_result=False,
            description="Prose around the computed numbers.",
            summarize=lambda r: f"{len(r.text.split()):,} words by {r.provider}",
        )
        result = await agent.call(
            "write_summary", {"kind": kind.value, "recommendations": len(report.recommendations)}
        )
        prose = ""
        if result.ok:
            response: ChatResponse[None] = result.result
            if response.fallback is not None:
                await agent.think(response.fallback.describe())
            prose = response.text.strip()
        else:
            await agent.think(
                f"The language model did not answer ({result.error}); the "
                "report is written from the numbers alone."
            )
        sections = render_sections(report)
        table = _answer_table(report)
        builtin = BuiltinModel()
        if prose and result.ok and result.result.provider != builtin.provider:
            fallback = builtin.write(prose_messages(brief))
            allowed = "\n".join((report.answer.headline, table, sections, fallback))
            invented = invented_numbers(prose, allowed)
            if invented:
                await agent.think(
                    f"The language model's prose wrote numbers the report does "
                    f"not hold ({', '.join(invented[:5])}); the built-in "
                    "engine's prose is used instead."
                )
                prose = fallback
            elif kind is ProseKind.ANSWER:
                report, prose = await _provider_headline(agent, report, prose)
        markdown = "\n\n".join(
            part
            for part in (
                report.answer.headline,
                _understood(report),
                table,
                prose,
                extra.strip(),
                sections,
            )
            if part
        )
        agent.result_summary = (
            f"{report.question.intent.value} answered, "
            f"{len(report.recommendations)} recommendations"
        )
        return report.model_copy(update={"markdown": markdown})
