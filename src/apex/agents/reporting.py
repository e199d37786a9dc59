"""The reporting agent: the report of PROTOCOL.md section 4, and its Markdown.

Numbers come only from the data read and the optimizations computed; the language model writes
the prose around them from a `ProseBrief` (the built-in engine fills templates with them). The
Markdown is the prose, then the spend table, the recommendations and the action plan rendered
from the same report, so what is read and what is exported never differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apex.agents.scope import AnalysisScope, UsageData, scoped_models, scoped_totals
from apex.execution.workflow import AgentScope
from apex.llm import (
    ChatResponse,
    LanguageModel,
    ProseBrief,
    ProseKind,
    RequestClassification,
    prose_messages,
)
from apex.llm.templates import usd as money

EMPTY_TOTALS = {"requests": 0, "cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0,
                "errors": 0}


def build_report(scope: AnalysisScope | None, data: UsageData | None,
                 recommendations: list[dict[str, Any]],
                 actions: list[dict[str, Any]]) -> dict[str, Any]:
    """The report without its Markdown. No data: the guidance shape (empty lists)."""
    if scope is None or data is None:
        period = scope.report_period() if scope else {"from": None, "to": None}
        return {"period": period, "totals": dict(EMPTY_TOTALS), "by_model": [],
                "recommendations": [], "actions": [], "markdown": ""}
    return {"period": scope.report_period(), "totals": scoped_totals(data, scope).to_report(),
            "by_model": scoped_models(data, scope), "recommendations": recommendations,
            "actions": actions, "markdown": ""}


def _cell(value: Any) -> str:
    text = " ".join(str(value).replace("|", "/").replace("<", " ").replace(">", " ").split())
    return text[:80] or "?"


def _ms(value: Any) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def render_sections(report: Mapping[str, Any]) -> str:
    """The tables and plans of the report, as Markdown."""
    blocks: list[str] = []
    period = report["period"]
    if report["by_model"]:
        lines = [f"## Spend by model ({str(period['from'])[:10]} to {str(period['to'])[:10]})",
                 "", "| provider | model | requests | cost | p50 ms | p95 ms |",
                 "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {_cell(m['provider'])} | {_cell(m['model'])} | {m['requests']:,} | "
                  f"{money(m['cost_usd'])} | {_ms(m['p50_latency_ms'])} | "
                  f"{_ms(m['p95_latency_ms'])} |" for m in report["by_model"]]
        totals = report["totals"]
        lines += ["", f"Total: {totals['requests']:,} requests, {money(totals['cost_usd'])}, "
                      f"{totals['errors']:,} errors."]
        blocks.append("\n".join(lines))
    if report["recommendations"]:
        lines = ["## Recommendations", "",
                 "| # | recommendation | $/month | % of spend | confidence | risk | traffic |",
                 "|---:|---|---:|---:|---:|---|---:|"]
        lines += [f"| {i} | {_cell(r['title'])} | {money(r['monthly_savings_usd'])} | "
                  f"{r['savings_pct']:.2f}% | {r['confidence']:.2f} | {r['risk']} | "
                  f"{100 * r['traffic_share']:.1f}% |"
                  for i, r in enumerate(report["recommendations"], 1)]
        blocks.append("\n".join(lines))
    if report["actions"]:
        lines = ["## Action plan"]
        for action in report["actions"]:
            lines += ["", f"### {_cell(action['title'])}", ""]
            lines += [f"{i}. {step}" for i, step in enumerate(action["steps"], 1)]
            lines += ["", "```yaml", action["config_snippet"], "```", "",
                      f"**Validate:** {action['validation']}", "",
                      f"**Roll back:** {action['rollback']}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


class ReportingAgent:
    name = "reporting"
    task = "Write the report and its summary"

    def __init__(self, model: LanguageModel) -> None:
        self.model = model

    async def run(self, agent: AgentScope, *, kind: ProseKind,
                  classification: RequestClassification, report: dict[str, Any],
                  missing: list[str], extra: str = "") -> dict[str, Any]:
        await agent.think({ProseKind.ANSWER: "Writing the answer from the computed numbers.",
                           ProseKind.PARTIAL: "Writing what the data supports and what it lacks.",
                           ProseKind.GUIDANCE: "Writing what to upload to get an answer."}[kind])
        brief = ProseBrief(kind=kind, question=agent.context.text[:20_000],
                           classification=classification, report=report, missing=missing)

        async def write_summary(**_arguments: Any) -> ChatResponse[None]:
            return await self.model.chat(prose_messages(brief))

        agent.context.tools.register("write_summary", write_summary, include_result=False,
                                     description="Prose around the computed numbers.",
                                     summarize=lambda r: f"{len(r.text.split()):,} words by "
                                                         f"{r.provider}")
        result = await agent.call("write_summary", {"kind": kind.value,
                                                    "recommendations":
                                                        len(report["recommendations"])})
        if result.ok:
            response: ChatResponse[None] = result.result
            if response.fallback is not None:
                await agent.think(response.fallback.describe())
            prose = response.text.strip()
        else:
            await agent.think(f"The language model did not answer ({result.error}); the "
                              "report is written from the numbers alone.")
            prose = ""
        understood = f"*Understood as a {classification.summary()}*"
        markdown = "\n\n".join(part for part in (understood, prose, extra.strip(),
                                                 render_sections(report)) if part)
        agent.result_summary = f"{kind.value} report, {len(report['recommendations'])} " \
                               "recommendations"
        return {**report, "markdown": markdown}
