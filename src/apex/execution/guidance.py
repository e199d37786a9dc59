"""The built-in workflow served until analysis agents are configured: a guidance supervisor.

It reads the question, has a triage step classify it with a tool, looks up which usage data
answers that kind of question, and replies with a guidance report (PROTOCOL.md section 4: empty
`by_model` and `recommendations`, `markdown` explaining what to load). Every step is streamed.
`step_delay_s` paces the steps so the live stream can be watched (demos, UI work).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from apex.execution.workflow import WorkflowContext, WorkflowOutcome

_CUES: dict[str, tuple[str, ...]] = {
    "cost": ("cost", "spend", "cheap", "save", "saving", "bill", "budget", "price", "$"),
    "latency": ("latency", "slow", "p95", "p99", "fast", "ttft", "time to first"),
    "model_selection": ("model", "gpt", "claude", "llama", "route", "routing", "switch"),
    "capacity": ("capacity", "rate limit", "throughput", "quota", "tokens per minute", "tpm"),
    "reporting": ("report", "summary", "breakdown", "dashboard", "trend", "by day"),
}
_NEEDS: dict[str, list[str]] = {
    "cost": ["model and provider per call", "input, output and cached-input tokens",
             "cost_usd (or let Apex price calls from its catalog)", "feature or tag per call"],
    "latency": ["latency_ms per call", "ttft_ms where your gateway records it",
                "model and feature per call"],
    "model_selection": ["model per call", "input and output tokens", "feature or tag per call",
                        "status (ok / error)"],
    "capacity": ["timestamps to the second", "input and output tokens", "error_type for "
                 "rate-limit errors"],
    "reporting": ["timestamp, model and provider", "tokens and cost_usd", "feature or tag"],
    "general": ["one row per LLM call: timestamp, provider, model, tokens, latency, status"],
}
_TARGET = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")


def _empty_report(markdown: str) -> dict[str, Any]:
    return {
        "period": {"from": None, "to": None},
        "totals": {"requests": 0, "cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0,
                   "errors": 0},
        "by_model": [], "recommendations": [], "actions": [], "markdown": markdown,
    }


class GuidanceWorkflow:
    def __init__(self, *, step_delay_s: float = 0.0) -> None:
        self.step_delay_s = step_delay_s

    async def _pace(self) -> None:
        if self.step_delay_s > 0:
            await asyncio.sleep(self.step_delay_s)

    async def _classify(self, *, text: str) -> dict[str, Any]:
        await self._pace()
        lowered = text.lower()
        scores = {name: sum(cue in lowered for cue in cues) for name, cues in _CUES.items()}
        category = max(scores, key=lambda name: scores[name])
        target = _TARGET.search(text)
        return {"category": category if scores[category] else "general",
                "target_pct": float(target.group(1)) if target else None}

    async def _requirements(self, *, category: str) -> list[str]:
        await self._pace()
        return _NEEDS.get(category, _NEEDS["general"])

    async def run(self, context: WorkflowContext) -> WorkflowOutcome:
        context.tools.register("classify_request", self._classify,
                               description="Classify a question about LLM usage.",
                               summarize=lambda r: f"{r['category']} question")
        context.tools.register("data_requirements", self._requirements,
                               description="The usage fields that answer a kind of question.",
                               summarize=lambda r: f"{len(r)} fields needed")
        await context.think("Reading your question.", step=1, total_steps=3)
        await self._pace()
        async with context.agent("triage", "Classify the request") as triage:
            await triage.think("Looking for cost, latency, model-choice and capacity cues.")
            classified = await triage.call("classify_request", {"text": context.text})
            facts = classified.result if classified.ok else {"category": "general",
                                                             "target_pct": None}
            triage.result_summary = f"{facts['category'].replace('_', ' ')} question"
        await self._pace()
        await context.think("No usage analysis is available yet: preparing what to load.",
                            step=2, total_steps=3)
        needs = await context.call("data_requirements", {"category": facts["category"]})
        fields = needs.result if needs.ok else _NEEDS["general"]
        await self._pace()
        await context.think("Writing the answer.", step=3, total_steps=3)
        markdown = self._answer(context.text, facts, fields, follow_up=bool(context.history))
        return WorkflowOutcome(final_response=markdown, report=_empty_report(markdown))

    @staticmethod
    def _answer(question: str, facts: dict[str, Any], fields: list[str], *,
                follow_up: bool) -> str:
        kind = facts["category"].replace("_", " ")
        target = (f" Your target of {facts['target_pct']:g}% will be checked against your own "
                  "rows." if facts.get("target_pct") else "")
        lines = [
            "## What I need to answer this",
            "",
            f"You asked{' again' if follow_up else ''}: “{' '.join(question.split())[:300]}”. "
            f"That is a {kind} question.{target}",
            "",
            "I have no usage data to analyse yet. Upload your LLM usage logs (CSV, JSONL, "
            "OpenTelemetry GenAI spans or a LiteLLM spend-log export), or load the demo data, "
            "with at least:",
            "",
            *[f"- {field}" for field in fields],
            "",
            "Every number in the report will then be computed from your rows and the price "
            "catalog.",
        ]
        return "\n".join(lines)
