"""The supervisor: the adaptive workflow that turns a question and the caller's usage into a
quantified report (PRODUCT.md "Agents").

- data sufficient: triage -> data -> optimization -> actions -> reporting
- partial data:    triage -> data_helper -> data -> reporting
- no data:         triage -> data_helper -> reporting (the guidance report)
- off topic:       triage -> reporting

Each agent runs in its own bracket (`agent_started` ... `agent_completed`) and calls its tools
through the run's dispatcher. Cancellation and the run timeout reach every step because every
step is awaited in the run's task; the run manager then closes whatever is open and emits the
one final event. Per run, the shared language model is wrapped to meter its provider calls into
the caller's own ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from apex.agents.actions import ActionsAgent
from apex.agents.data import DataAgent
from apex.agents.data_helper import DataHelperAgent
from apex.agents.optimization import OptimizationAgent
from apex.agents.reporting import ReportingAgent, build_report
from apex.agents.scope import AnalysisScope, UsageData
from apex.agents.triage import Sufficiency, TriageAgent, TriageVerdict
from apex.analytics.ledger import Ledger
from apex.analytics.pricing import PriceCatalog
from apex.execution.workflow import AgentScope, WorkflowContext, WorkflowOutcome
from apex.llm import LanguageModel, LlmUsageRecorder, MeteredModel, ProseKind, RequestCategory

CatalogFor = Callable[[str], PriceCatalog]
RecorderFor = Callable[[str], LlmUsageRecorder]


class SupervisorWorkflow:
    """The default workflow of the app (a `Workflow`)."""

    def __init__(self, *, ledger: Ledger, catalog_for: CatalogFor, model: LanguageModel,
                 recorder_for: RecorderFor | None = None, step_delay_s: float = 0.0) -> None:
        self.ledger = ledger
        self.catalog_for = catalog_for
        self.model = model
        self.recorder_for = recorder_for
        self.step_delay_s = step_delay_s

    def model_for(self, user_id: str) -> LanguageModel:
        """The shared model, metered into this user's ledger when a recorder is configured."""
        if self.recorder_for is None:
            return self.model
        return MeteredModel(self.model, self.recorder_for(user_id))

    async def _pace(self) -> None:
        if self.step_delay_s > 0:
            await asyncio.sleep(self.step_delay_s)

    async def run(self, context: WorkflowContext) -> WorkflowOutcome:
        user_id = context.ctx.user_id
        model = self.model_for(user_id)
        await context.think("Triage first: what is asked, and can your data answer it?",
                            step=1, total_steps=2)
        triage = TriageAgent(model, self.ledger)
        async with context.agent(triage.name, triage.task) as agent:
            verdict = await triage.run(agent, text=context.text, history=context.history,
                                       tenant_id=user_id)
        await self._pace()
        category = verdict.classification.category
        if category is RequestCategory.OFF_TOPIC:
            await context.think("Off topic: answering without reading any data.", step=2,
                                total_steps=2)
            return await self._report(context, model, verdict, ProseKind.ANSWER, None, None,
                                      [], [])
        if verdict.sufficiency is Sufficiency.NONE:
            return await self._guidance(context, model, verdict)
        if verdict.sufficiency is Sufficiency.PARTIAL:
            return await self._partial(context, model, verdict)
        return await self._full(context, model, verdict)

    async def _guidance(self, context: WorkflowContext, model: LanguageModel,
                        verdict: TriageVerdict) -> WorkflowOutcome:
        await context.think("No usable data: data_helper, then a guidance report.", step=2,
                            total_steps=3)
        help_text = await self._help(context, verdict)
        await context.think("Writing the guidance report.", step=3, total_steps=3)
        return await self._report(context, model, verdict, ProseKind.GUIDANCE, verdict.scope,
                                  None, [], [], extra=help_text)

    async def _partial(self, context: WorkflowContext, model: LanguageModel,
                       verdict: TriageVerdict) -> WorkflowOutcome:
        await context.think("Part of the data is there: data_helper, data, then a partial "
                            "report.", step=2, total_steps=4)
        help_text = await self._help(context, verdict)
        scope, data = await self._read(context, verdict, full=False, step=3)
        return await self._report(context, model, verdict, ProseKind.PARTIAL, scope, data, [],
                                  [], extra=help_text)

    async def _full(self, context: WorkflowContext, model: LanguageModel,
                    verdict: TriageVerdict) -> WorkflowOutcome:
        await context.think("The data can answer this: data, optimization, actions, reporting.",
                            step=2, total_steps=5)
        scope, data = await self._read(context, verdict, full=True, step=2)
        await context.think("Computing savings from your rows and the price catalog.", step=3,
                            total_steps=5)
        optimization = OptimizationAgent()
        async with context.agent(optimization.name, optimization.task) as agent:
            catalog = await asyncio.to_thread(self.catalog_for, scope.tenant_id)
            recommendations = await optimization.run(agent, scope, data, catalog)
        await self._pace()
        await context.think("Turning the recommendations into an action plan.", step=4,
                            total_steps=5)
        actions_agent = ActionsAgent()
        async with context.agent(actions_agent.name, actions_agent.task) as agent:
            actions = await actions_agent.run(agent, recommendations)
        await self._pace()
        await context.think("Writing the report.", step=5, total_steps=5)
        return await self._report(context, model, verdict, ProseKind.ANSWER, scope, data,
                                  recommendations, actions)

    async def _help(self, context: WorkflowContext, verdict: TriageVerdict) -> str:
        helper = DataHelperAgent()
        async with context.agent(helper.name, helper.task) as agent:
            text = await helper.run(agent, missing=list(verdict.missing),
                                    category=verdict.classification.category.value)
        await self._pace()
        return text

    async def _read(self, context: WorkflowContext, verdict: TriageVerdict, *, full: bool,
                    step: int) -> tuple[AnalysisScope, UsageData]:
        assert verdict.scope is not None and verdict.coverage is not None
        data_agent = DataAgent(self.ledger)
        async with context.agent(data_agent.name, data_agent.task) as agent:
            data = await data_agent.run(agent, verdict.scope, verdict.coverage, full=full)
            scope = await _narrow(agent, verdict.scope, data)
        await self._pace()
        return scope, data

    async def _report(self, context: WorkflowContext, model: LanguageModel,
                      verdict: TriageVerdict, kind: ProseKind, scope: AnalysisScope | None,
                      data: UsageData | None, recommendations: list[dict[str, object]],
                      actions: list[dict[str, object]], *, extra: str = "") -> WorkflowOutcome:
        reporting = ReportingAgent(model)
        async with context.agent(reporting.name, reporting.task) as agent:
            report = await reporting.run(
                agent, kind=kind, classification=verdict.classification,
                report=build_report(scope, data, recommendations, actions),
                missing=list(verdict.missing), extra=extra)
        return WorkflowOutcome(final_response=report["markdown"], report=report)


async def _narrow(agent: AgentScope, scope: AnalysisScope, data: UsageData) -> AnalysisScope:
    """Keep only the named features the rows have; none of them: the whole period."""
    if not scope.features:
        return scope
    present = {row.feature for row in data.by_feature}
    kept = tuple(name for name in scope.features if name in present)
    if kept:
        await agent.think(f"Narrowing the analysis to {', '.join(kept)}.")
    else:
        await agent.think(f"No rows carry {', '.join(scope.features)}; analysing every feature.")
    return replace(scope, features=kept)
