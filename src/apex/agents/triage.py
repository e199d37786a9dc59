"""The triage agent: what is asked, about what, and whether the caller's data can answer it.

The configured language model reads the question into a plan (with the thread's earlier
questions as context); when it fell back to the built-in engine the agent says so. The plan's
names are checked against the caller's own rows and the price catalog (`question.understand`),
its period resolved against today. Sufficiency is judged from the ledger for that scope: no rows
is `none`; rows lacking a column the question needs (latency for a latency question, prices for
a money question, features it names) is `partial`; otherwise `sufficient`. Whose rows are read
is always the caller's: the plan can narrow the period and the scope, nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from apex.agents.analyses import AnalysisArguments
from apex.agents.data import ledger_unavailable
from apex.agents.question import ReportQuestion, Understood, question_of, understand
from apex.analytics.filters import ANALYSED_ROWS, UsageFilter
from apex.analytics.ledger import Ledger
from apex.analytics.pricing import PriceCatalog
from apex.analytics.results import ColumnCoverage, LedgerBounds, UsageNames
from apex.execution.workflow import AgentScope, ThreadMessage
from apex.llm import (
    CONVERSATIONAL,
    BuiltinModel,
    ChatResponse,
    ClassificationFlag,
    Intent,
    LanguageModel,
    QuestionPlan,
    plan_messages,
)
from apex.timestamps import as_utc, format_timestamp

# intents whose answer is money: rows without a price cannot answer them
MONEY_INTENTS = frozenset(
    {
        Intent.COST_REDUCTION,
        Intent.SPEND,
        Intent.BREAKDOWN,
        Intent.WHAT_IF,
        Intent.COMPARE,
        Intent.FORECAST,
        Intent.BUDGET,
        Intent.CACHING,
        Intent.BATCHING,
        Intent.MODEL_SELECTION,
        Intent.SUMMARY,
    }
)


class Sufficiency(StrEnum):
    SUFFICIENT = "sufficient"
    PARTIAL = "partial"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class TriageVerdict:
    classification: QuestionPlan
    sufficiency: Sufficiency
    missing: tuple[str, ...] = ()
    understood: Understood | None = None
    coverage: ColumnCoverage | None = None
    newest: datetime | None = None

    @property
    def question(self) -> ReportQuestion:
        if self.understood is not None:
            return self.understood.question
        return question_of(self.classification)


def missing_columns(classification: QuestionPlan, coverage: ColumnCoverage) -> list[str]:
    """The columns this question needs that none of the period's rows carry."""
    intent = classification.intent
    missing: list[str] = []
    if intent is Intent.LATENCY and not coverage.latency_rows:
        missing.append("latency_ms")
    if intent in MONEY_INTENTS and not coverage.priced_rows:
        missing.append("cost_usd")
    if intent is Intent.MODEL_SELECTION and not coverage.output_token_rows:
        missing.append("output_tokens")
    if classification.entities.features and not coverage.feature_rows:
        missing.append("feature")
    return missing


def earlier_questions(history: Sequence[ThreadMessage]) -> list[str]:
    return [message.text for message in history if message.role == "user"]


class TriageAgent:
    name = "triage"
    task = "Read the question into a plan and judge whether your data can answer it"

    def __init__(
        self,
        model: LanguageModel,
        ledger: Ledger,
        catalog_for: Callable[[str], PriceCatalog],
        today: Callable[[], date],
    ) -> None:
        self.model = model
        self.ledger = ledger
        self.catalog_for = catalog_for
        self.today = today

    async def run(
        self, agent: AgentScope, *, text: str, history: Sequence[ThreadMessage], tenant_id: str
    ) -> TriageVerdict:
        earlier = earlier_questions(history)
        tools = agent.context.tools

        async def classify_request(**_counts: Any) -> ChatResponse[QuestionPlan]:
            return await self.model.chat(plan_messages(text, earlier), output_type=QuestionPlan)

        async def usage_bounds() -> LedgerBounds:
            return await self.ledger.period_bounds(tenant_id, where=ANALYSED_ROWS)

        async def usage_names() -> list[UsageNames]:
            return await self.ledger.names(tenant_id)

        async def data_coverage(**arguments: Any) -> ColumnCoverage:
            scope = AnalysisArguments.model_validate(arguments)
            return await self.ledger.coverage(
                tenant_id,
                scope.period,
                where=UsageFilter(
                    models=tuple(scope.models),
                    providers=tuple(scope.providers),
                    features=tuple(scope.features),
                    exclude_features=exclude,
                ),
            )

        exclude: tuple[str, ...] = ()
        tools.register(
            "classify_request",
            classify_request,
            include_result=False,
            description="Read the question into a plan: intent, scope, period.",
            summarize=lambda response: response.output.summary(),
        )
        tools.register(
            "usage_bounds",
            usage_bounds,
            include_result=False,
            description="How many rows you have and when they start and end.",
            summarize=lambda b: f"{b.requests:,} rows",
        )
        tools.register(
            "usage_names",
            usage_names,
            include_result=False,
            description="The providers, models and features your rows name.",
            summarize=lambda names: f"{len(names):,} provider/model/feature combinations",
        )
        tools.register(
            "data_coverage",
            data_coverage,
            include_result=False,
            description="Which optional columns the scope's rows carry.",
            summarize=lambda c: (
                f"{c.requests:,} rows, {c.latency_rows:,} with "
                f"latency, {c.feature_rows:,} with a feature"
            ),
        )
        await agent.think(
            "Reading the question"
            + (f" with {len(earlier)} earlier question(s) of this thread." if earlier else ".")
        )
        classification = await self._classify(agent, len(text), len(earlier))
        await agent.think(f"Understood as a {classification.summary()}")
        if classification.flags:
            await agent.think(_flag_note(classification.flags))
        intent = classification.intent
        if intent in CONVERSATIONAL:
            agent.result_summary = f"{intent.value}: no data needed"
            return TriageVerdict(classification, Sufficiency.NONE)
        bounds_result, names_result = await asyncio.gather(
            agent.call("usage_bounds"), agent.call("usage_names")
        )
        for result in (bounds_result, names_result):
            if not result.ok:
                raise ledger_unavailable(result.error)
        bounds: LedgerBounds = bounds_result.result
        catalog = await asyncio.to_thread(self.catalog_for, tenant_id)
        understood = understand(
            classification,
            names=names_result.result,
            catalog=catalog,
            newest=bounds.last_timestamp,
            today=self.today(),
        )
        exclude = understood.where.exclude_features
        if understood.question.unknown:
            await agent.think(
                "Not in your rows or the price catalog, so left out: "
                + ", ".join(understood.question.unknown)
                + "."
            )
        if bounds.last_timestamp is None:
            await agent.think("There is no usage data in your account yet.")
            agent.result_summary = f"{intent.value} question; no data"
            return TriageVerdict(classification, Sufficiency.NONE, understood=understood)
        if understood.nothing_to_compute:
            agent.result_summary = f"{intent.value} question; nothing it names is in your data"
            return TriageVerdict(
                classification,
                Sufficiency.NONE,
                understood=understood,
                newest=bounds.last_timestamp,
            )
        assert understood.period is not None
        where = understood.where
        coverage_result = await agent.call(
            "data_coverage",
            {
                "from": format_timestamp(as_utc(understood.period.start)),
                "to": format_timestamp(as_utc(understood.period.end)),
                "models": list(where.models),
                "providers": list(where.providers),
                "features": list(where.features),
            },
        )
        if not coverage_result.ok:
            raise ledger_unavailable(coverage_result.error)
        coverage: ColumnCoverage = coverage_result.result
        if not coverage.requests:
            await agent.think("None of your rows fall in the period and scope asked about.")
            agent.result_summary = f"{intent.value} question; no data in period"
            return TriageVerdict(
                classification,
                Sufficiency.NONE,
                understood=understood,
                coverage=coverage,
                newest=bounds.last_timestamp,
            )
        missing = missing_columns(classification, coverage)
        sufficiency = Sufficiency.PARTIAL if missing else Sufficiency.SUFFICIENT
        await agent.think(
            f"{coverage.requests:,} calls in the period; "
            + (
                f"missing for this question: {', '.join(missing)}."
                if missing
                else "enough to answer it."
            )
        )
        agent.result_summary = f"{intent.value} question; data {sufficiency}"
        return TriageVerdict(
            classification, sufficiency, tuple(missing), understood, coverage, bounds.last_timestamp
        )

    async def _classify(self, agent: AgentScope, chars: int, earlier: int) -> QuestionPlan:
        result = await agent.call(
            "classify_request", {"question_chars": chars, "earlier_questions": earlier}
        )
        if result.ok:
            response: ChatResponse[QuestionPlan] = result.result
            if response.fallback is not None:
                await agent.think(response.fallback.describe())
            return response.output
        await agent.think(
            f"The language model did not answer ({result.error}); the built-in "
            "rules classified the question instead."
        )
        return BuiltinModel().classify(
            plan_messages(agent.context.text, earlier_questions(agent.context.history))
        )


def _flag_note(flags: Sequence[ClassificationFlag]) -> str:
    notes = []
    if ClassificationFlag.PROMPT_INJECTION in flags:
        notes.append("instructions addressed to the assistant were ignored")
    if ClassificationFlag.OTHER_USERS_DATA in flags:
        notes.append("only your own data is ever read")
    return "Note: " + "; ".join(notes) + "."
