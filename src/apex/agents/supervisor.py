"""The supervisor: the adaptive workflow that turns a question and the caller's usage into an
answer and a report (PRODUCT.md "Agents", PROTOCOL.md sections 4 and 5).

- greeting, off topic, unsafe: triage -> reporting (no data read)
- no usable data:              triage -> data_helper -> reporting (the guidance report)
- partial data:                triage -> data_helper -> data -> reporting
- data sufficient:             triage -> data -> reporting, with optimization -> actions before
                               reporting when the intent answers with recommendations

Triage reads the question into a plan; the plan's intent decides what runs (`intents.NEEDS`):
the data agent reads the scope's totals and the intent's analyses, and only the intents that
recommend run the optimization finders, each only the kinds it is about. Each agent runs in its
own bracket (`agent_started` ... `agent_completed`) and calls its tools through the run's
dispatcher. Cancellation and the run timeout reach every step because every step is awaited in
the run's task; the run manager then closes whatever is open and emits the one final event. Per
run, the shared language model is wrapped to meter its provider calls into the caller's own
ledger (as rows of feature `apex`, which no analysis counts unless asked).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from apex.agents.actions import ActionsAgent
from apex.agents.analyses import AnalysisContext, run_analysis
from apex.agents.analyses.budget import BudgetFitArguments
from apex.agents.answering import (
    Findings,
    answer,
    conversation_answer,
    no_data_answer,
    unknown_answer,
    with_unknown_note,
)
from apex.agents.data import DataAgent, DataRead, ledger_unavailable
from apex.agents.data_helper import DataHelperAgent
from apex.agents.intents import NEEDS, IntentNeeds
from apex.agents.optimization import OptimizationAgent
from apex.agents.planning import question_arguments
from apex.agents.question import ReportPeriod, Understood
from apex.agents.report import Action, Answer, ModelLine, Recommendation, Report, Totals
from apex.agents.reporting import ReportingAgent
from apex.agents.scope import AnalysisScope
from apex.agents.triage import Sufficiency, TriageAgent, TriageVerdict
from apex.analytics.filters import OWN_CALLS_FEATURE
from apex.analytics.ledger import Ledger
from apex.analytics.pricing import PriceCatalog
from apex.execution.workflow import AgentScope, WorkflowContext, WorkflowOutcome
from apex.llm import (
    CONVERSATIONAL,
    Intent,
    LanguageModel,
    LlmUsageRecorder,
    MeteredModel,
    ProseKind,
)

CatalogFor = Callable[[str], PriceCatalog]
RecorderFor = Callable[[str], LlmUsageRecorder]


class SupervisorWorkflow:
    """The default workflow of the app (a `Workflow`)."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        catalog_for: CatalogFor,
        model: LanguageModel,
        recorder_for: RecorderFor | None = None,
        step_delay_s: float = 0.0,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self.ledger = ledger
        self.catalog_for = catalog_for
        self.model = model
        self.recorder_for = recorder_for
        self.step_delay_s = step_delay_s
        self.today = today

    def model_for(self, user_id: str) -> LanguageModel:
        """The shared model, metered into this user's ledger when a recorder is configured."""
        if self.recorder_for is None:
            return self.model
        return MeteredModel(self.model, self.recorder_for(user_id), feature=OWN_CALLS_FEATURE)

    async def _pace(self) -> None:
        if self.step_delay_s > 0:
            await asyncio.sleep(self.step_delay_s)

    async def run(self, context: WorkflowContext) -> WorkflowOutcome:
        user_id = context.ctx.user_id
        model = self.model_for(user_id)
        await context.think(
            "Triage first: what is asked, and can your data answer it?", step=1, total_steps=2
        )
        triage = TriageAgent(model, self.ledger, self.catalog_for, self.today)
        async with context.agent(triage.name, triage.task) as agent:
            verdict = await triage.run(
                agent, text=context.text, history=context.history, tenant_id=user_id
            )
        await self._pace()
        intent = verdict.classification.intent
        if intent in CONVERSATIONAL:
            await context.think(
                "Nothing to compute for this: answering without reading any data.",
                step=2,
                total_steps=2,
            )
            report = Report(question=verdict.question, answer=conversation_answer(intent))
            return await self._report(context, model, verdict, ProseKind.ANSWER, report)
        if verdict.sufficiency is Sufficiency.NONE:
            return await self._guidance(context, model, verdict)
        understood = verdict.understood
        assert understood is not None
        catalog = await asyncio.to_thread(self.catalog_for, user_id)
        analyses = AnalysisContext(
            tenant_id=user_id,
            ledger=self.ledger,
            catalog=catalog,
            exclude_features=understood.where.exclude_features,
            newest=verdict.newest,
        )
        needs = NEEDS[intent]
        if verdict.sufficiency is Sufficiency.PARTIAL:
            return await self._partial(context, model, verdict, analyses, needs)
        return await self._full(context, model, verdict, analyses, needs)

    async def _guidance(
        self, context: WorkflowContext, model: LanguageModel, verdict: TriageVerdict
    ) -> WorkflowOutcome:
        await context.think(
            "No usable data: data_helper, then a guidance report.", step=2, total_steps=3
        )
        help_text = await self._help(context, verdict)
        await context.think("Writing the guidance report.", step=3, total_steps=3)
        understood = verdict.understood
        intent = verdict.classification.intent
        if understood is not None and understood.nothing_to_compute:
            found: Answer = unknown_answer(intent, understood.question.unknown)
        else:
            found = no_data_answer(intent, in_period=verdict.newest is not None)
        report = Report(
            question=verdict.question,
            answer=found,
            period=ReportPeriod.of(understood.period if understood else None),
        )
        return await self._report(
            context, model, verdict, ProseKind.GUIDANCE, report, extra=help_text
        )

    async def _partial(
        self,
        context: WorkflowContext,
        model: LanguageModel,
        verdict: TriageVerdict,
        analyses: AnalysisContext,
        needs: IntentNeeds,
    ) -> WorkflowOutcome:
        await context.think(
            "Part of the data is there: data_helper, data, then a partial report.",
            step=2,
            total_steps=4,
        )
        help_text = await self._help(context, verdict)
        read = await self._read(context, model, verdict, analyses, IntentNeeds(needs.analyses))
        report = self._assemble(verdict, read, None)
        return await self._report(
            context, model, verdict, ProseKind.PARTIAL, report, extra=help_text
        )

    async def _full(
        self,
        context: WorkflowContext,
        model: LanguageModel,
        verdict: TriageVerdict,
        analyses: AnalysisContext,
        needs: IntentNeeds,
    ) -> WorkflowOutcome:
        steps = 5 if needs.recommends else 3
        await context.think(
            "The data can answer this: data, optimization, actions, reporting."
            if needs.recommends
            else "The data can answer this: data, then the answer; nothing to optimize for "
            "this question.",
            step=2,
            total_steps=steps,
        )
        read = await self._read(context, model, verdict, analyses, needs)
        optimized = None
        if needs.recommends and read.usage is not None:
            optimized = await self._optimize(context, verdict, analyses, needs, read)
        report = self._assemble(verdict, read, optimized)
        await context.think("Writing the answer and the report.", step=steps, total_steps=steps)
        return await self._report(context, model, verdict, ProseKind.ANSWER, report)

    async def _optimize(
        self,
        context: WorkflowContext,
        verdict: TriageVerdict,
        analyses: AnalysisContext,
        needs: IntentNeeds,
        read: DataRead,
    ) -> tuple[list[dict[str, object]], list[dict[str, object]], Decimal]:
        understood = verdict.understood
        assert understood is not None and understood.period is not None
        assert read.usage is not None
        scope = AnalysisScope(
            tenant_id=analyses.tenant_id, period=understood.period, where=understood.where
        )
        await context.think(
            "Computing savings from your rows and the price catalog.", step=3, total_steps=5
        )
        optimization = OptimizationAgent()
        async with context.agent(optimization.name, optimization.task) as agent:
            found = await optimization.run(
                agent, replace(analyses, usage=read.usage), scope, finders=list(needs.finders)
            )
            budget = understood.question.budget_usd
            if verdict.classification.intent is Intent.BUDGET and budget is not None:
                await self._fit_budget(
                    agent,
                    analyses,
                    understood,
                    read,
                    budget,
                    scope.monthly(found.achievable_period_savings_usd),
                )
        await self._pace()
        await context.think(
            "Turning the recommendations into an action plan.", step=4, total_steps=5
        )
        actions_agent = ActionsAgent()
        async with context.agent(actions_agent.name, actions_agent.task) as agent:
            actions = await actions_agent.run(agent, found.recommendations)
        await self._pace()
        return found.recommendations, actions, found.achievable_period_savings_usd

    @staticmethod
    async def _fit_budget(
        agent: AgentScope,
        analyses: AnalysisContext,
        understood: Understood,
        read: DataRead,
        budget: float,
        achievable: Decimal,
    ) -> None:
        arguments = BudgetFitArguments.model_validate(
            {
                **question_arguments("budget_fit", understood, analyses).model_dump(by_alias=True),
                "budget_usd": Decimal(str(budget)),
                "achievable_monthly_savings_usd": achievable,
            }
        )
        fit = await run_analysis(agent, analyses, "budget_fit", arguments)
        if not fit.ok:
            raise ledger_unavailable(fit.error)
        read.results["budget_fit"] = fit.result

    def _assemble(
        self,
        verdict: TriageVerdict,
        read: DataRead,
        optimized: tuple[list[dict[str, object]], list[dict[str, object]], Decimal] | None,
    ) -> Report:
        understood: Understood | None = verdict.understood
        assert understood is not None
        recommendations, actions, achievable = optimized or ([], [], None)
        findings = Findings(
            understood=understood,
            totals=read.totals,
            results=read.results,
            achievable_period_usd=achievable,
            recommendations=tuple(recommendations),
        )
        intent = verdict.classification.intent
        return Report(
            question=understood.question,
            answer=with_unknown_note(answer(intent, findings), understood.question.unknown),
            period=ReportPeriod.of(understood.period),
            totals=Totals.of(read.totals),
            by_model=[ModelLine.of(m) for m in read.by_model],
            recommendations=[Recommendation.model_validate(r) for r in recommendations],
            actions=[Action.model_validate(a) for a in actions],
        )

    async def _help(self, context: WorkflowContext, verdict: TriageVerdict) -> str:
        helper = DataHelperAgent()
        async with context.agent(helper.name, helper.task) as agent:
            text = await helper.run(
                agent, missing=list(verdict.missing), category=verdict.classification.category.value
            )
        await self._pace()
        return text

    async def _read(
        self,
        context: WorkflowContext,
        model: LanguageModel,
        verdict: TriageVerdict,
        analyses: AnalysisContext,
        needs: IntentNeeds,
    ) -> DataRead:
        assert verdict.understood is not None and verdict.coverage is not None
        data_agent = DataAgent(self.ledger)
        async with context.agent(data_agent.name, data_agent.task) as agent:
            read = await data_agent.run(
                agent, analyses, verdict.understood, needs, verdict.coverage, model
            )
        await self._pace()
        return read

    async def _report(
        self,
        context: WorkflowContext,
        model: LanguageModel,
        verdict: TriageVerdict,
        kind: ProseKind,
        report: Report,
        *,
        extra: str = "",
    ) -> WorkflowOutcome:
        reporting = ReportingAgent(model)
        async with context.agent(reporting.name, reporting.task) as agent:
            written = await reporting.run(
                agent,
                kind=kind,
                classification=verdict.classification,
                report=report,
                missing=list(verdict.missing),
                extra=extra,
            )
        return WorkflowOutcome(
            final_response=written.markdown,
            report=written.to_protocol(),
            summary=written.answer.headline,
        )
