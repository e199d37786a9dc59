"""The triage agent: what is asked, about what, and whether the caller's data can answer it.

The configured language model classifies the question (with the thread's earlier questions as
context); when it fell back to the built-in engine the agent says so. Sufficiency is judged from
the ledger for this request: no rows in the period is `none`; rows lacking a column the
question needs (latency for a latency question, prices for a cost question, features it names)
is `partial`; otherwise `sufficient`. The scope it returns is always the caller's own rows: the
classification can narrow the period and the features, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from apex.agents.data import ledger_unavailable, period_of
from apex.agents.scope import AnalysisScope, day_start
from apex.analytics.ledger import Ledger, default_period_ending
from apex.analytics.results import ColumnCoverage, LedgerBounds, UsagePeriod
from apex.execution.workflow import AgentScope, ThreadMessage
from apex.llm import (
    BuiltinModel,
    ChatResponse,
    ClassificationFlag,
    LanguageModel,
    RequestCategory,
    RequestClassification,
    classification_messages,
)


class Sufficiency(StrEnum):
    SUFFICIENT = "sufficient"
    PARTIAL = "partial"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class TriageVerdict:
    classification: RequestClassification
    sufficiency: Sufficiency
    missing: tuple[str, ...] = ()
    scope: AnalysisScope | None = None
    coverage: ColumnCoverage | None = None


def missing_columns(classification: RequestClassification,
                    coverage: ColumnCoverage) -> list[str]:
    """The columns this question needs that none of the period's rows carry."""
    category = classification.category
    missing: list[str] = []
    if category in (RequestCategory.LATENCY, RequestCategory.CAPACITY) and \
            not coverage.latency_rows:
        missing.append("latency_ms")
    if category in (RequestCategory.COST, RequestCategory.MODEL_SELECTION) and \
            not coverage.priced_rows:
        missing.append("cost_usd")
    if category is RequestCategory.MODEL_SELECTION and not coverage.output_token_rows:
        missing.append("output_tokens")
    if classification.entities.features and not coverage.feature_rows:
        missing.append("feature")
    return missing


def earlier_questions(history: Sequence[ThreadMessage]) -> list[str]:
    return [message.text for message in history if message.role == "user"]


class TriageAgent:
    name = "triage"
    task = "Classify the request and judge whether your data can answer it"

    def __init__(self, model: LanguageModel, ledger: Ledger) -> None:
        self.model = model
        self.ledger = ledger

    async def run(self, agent: AgentScope, *, text: str, history: Sequence[ThreadMessage],
                  tenant_id: str) -> TriageVerdict:
        earlier = earlier_questions(history)
        tools = agent.context.tools

        async def classify_request(**_counts: Any) -> ChatResponse[RequestClassification]:
            return await self.model.chat(classification_messages(text, earlier),
                                         output_type=RequestClassification)

        async def usage_bounds() -> LedgerBounds:
            return await self.ledger.period_bounds(tenant_id)

        async def data_coverage(**period: str) -> ColumnCoverage:
            return await self.ledger.coverage(tenant_id, period_of(period))

        tools.register("classify_request", classify_request, include_result=False,
                       description="Classify the question and extract its entities.",
                       summarize=lambda response: response.output.summary())
        tools.register("usage_bounds", usage_bounds, include_result=False,
                       description="How many rows you have and when they start and end.",
                       summarize=lambda b: f"{b.requests:,} rows")
        tools.register("data_coverage", data_coverage, include_result=False,
                       description="Which optional columns the period's rows carry.",
                       summarize=lambda c: f"{c.requests:,} rows, {c.latency_rows:,} with "
                                           f"latency, {c.feature_rows:,} with a feature")
        await agent.think("Reading the question"
                          + (f" with {len(earlier)} earlier question(s) of this thread."
                             if earlier else "."))
        classification = await self._classify(agent, len(text), len(earlier))
        await agent.think(f"Understood as a {classification.summary()}")
        if classification.flags:
            await agent.think(_flag_note(classification.flags))
        if classification.category is RequestCategory.OFF_TOPIC:
            agent.result_summary = "off-topic request"
            return TriageVerdict(classification, Sufficiency.NONE)
        bounds = await agent.call("usage_bounds")
        if not bounds.ok:
            raise ledger_unavailable(bounds.error)
        if bounds.result.last_timestamp is None:
            await agent.think("There is no usage data in your account yet.")
            agent.result_summary = f"{classification.category.value} question; no data"
            return TriageVerdict(classification, Sufficiency.NONE)
        scope = AnalysisScope(tenant_id=tenant_id,
                              period=_resolve(classification, bounds.result),
                              features=tuple(classification.entities.features))
        coverage_result = await agent.call("data_coverage", scope.period_arguments())
        if not coverage_result.ok:
            raise ledger_unavailable(coverage_result.error)
        coverage: ColumnCoverage = coverage_result.result
        if not coverage.requests:
            await agent.think("None of your rows fall in the period asked about.")
            agent.result_summary = f"{classification.category.value} question; no data in period"
            return TriageVerdict(classification, Sufficiency.NONE, scope=scope)
        missing = missing_columns(classification, coverage)
        sufficiency = Sufficiency.PARTIAL if missing else Sufficiency.SUFFICIENT
        await agent.think(
            f"{coverage.requests:,} calls in the period; "
            + (f"missing for this question: {', '.join(missing)}." if missing
               else "enough to answer it."))
        agent.result_summary = f"{classification.category.value} question; data {sufficiency}"
        return TriageVerdict(classification, sufficiency, tuple(missing), scope, coverage)

    async def _classify(self, agent: AgentScope, chars: int,
                        earlier: int) -> RequestClassification:
        result = await agent.call("classify_request", {"question_chars": chars,
                                                       "earlier_questions": earlier})
        if result.ok:
            response: ChatResponse[RequestClassification] = result.result
            if response.fallback is not None:
                await agent.think(response.fallback.describe())
            return response.output
        await agent.think(f"The language model did not answer ({result.error}); the built-in "
                          "rules classified the question instead.")
        return BuiltinModel().classify(
            classification_messages(agent.context.text,
                                    earlier_questions(agent.context.history)))


def _flag_note(flags: Sequence[ClassificationFlag]) -> str:
    notes = []
    if ClassificationFlag.PROMPT_INJECTION in flags:
        notes.append("instructions addressed to the assistant were ignored")
    if ClassificationFlag.OTHER_USERS_DATA in flags:
        notes.append("only your own data is ever read")
    return "Note: " + "; ".join(notes) + "."


def _resolve(classification: RequestClassification, bounds: LedgerBounds) -> UsagePeriod:
    assert bounds.last_timestamp is not None
    requested = classification.entities.period
    if requested is None:
        return default_period_ending(bounds.last_timestamp)
    start, end = requested.resolve(bounds.last_timestamp.date())
    return UsagePeriod(start=day_start(start), end=day_start(end))
