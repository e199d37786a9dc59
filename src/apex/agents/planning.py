"""Which analyses a run reads, and with which arguments.

With the built-in engine, the intent decides (`intents.NEEDS`). With a provider, the model
chooses by tool calling: it is offered every analysis of the registry (name, description, the
JSON schema of its arguments) and answers with at most `MAX_TOOL_CALLS` calls. Each call is
validated against its analysis's arguments; the period and scope are always the understood
question's (a model that asks for another is corrected, and the agent says so), so the figures
and the question they answer never disagree, and no argument can name whose rows are read: the
run's context decides that. An analysis the intent's answer cannot do without is added when the
model left it out; the scope's totals and per-model spend are always read. An intent answered by
recommendations (cost reduction, budget, summary, caching, batching, model selection) reads what
its finders need, so the model is not asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from apex.agents.analyses import ANALYSES, AnalysisArguments, AnalysisContext
from apex.agents.analyses.forecast import ForecastArguments, base_window
from apex.agents.analyses.usage import BreakdownArguments
from apex.agents.analyses.what_if import WhatIfArguments
from apex.agents.intents import IntentNeeds
from apex.agents.question import Understood
from apex.execution.workflow import AgentScope
from apex.llm import ChatResponse, LanguageModel, ToolSpec, tool_messages
from apex.llm.builtin import BUILTIN_PROVIDER

MAX_TOOL_CALLS = 8
# read for every answer: the report's `totals` and `by_model`
ALWAYS = ("usage_totals", "usage_by_model")
# the arguments that are the question's, whatever a model asks
_QUESTION_FIELDS = ("from", "to", "models", "providers", "features", "forecast_from", "forecast_to")


@dataclass(frozen=True, slots=True)
class PlannedAnalysis:
    name: str
    arguments: AnalysisArguments


def question_arguments(
    name: str, understood: Understood, context: AnalysisContext
) -> AnalysisArguments:
    """The arguments of analysis `name` for the understood question: its period and scope, and
    what the question adds (a breakdown's dimension, a what-if's target, a forecast's period)."""
    assert understood.period is not None
    where = understood.where
    base: dict[str, Any] = {
        "from": understood.period.start,
        "to": understood.period.end,
        "models": list(where.models),
        "providers": list(where.providers),
        "features": list(where.features),
    }
    question = understood.question
    if name == "breakdown":
        return BreakdownArguments.model_validate(
            {**base, "dimension": understood.dimension or "feature"}
        )
    if name == "what_if":
        target = question.target_models[0] if question.target_models else None
        return WhatIfArguments.model_validate({**base, "target_model": target})
    if name == "forecast":
        if understood.forecast is None or context.newest is None:
            raise ValueError("the question names no period to forecast")
        window = base_window(context.newest)
        return ForecastArguments.model_validate(
            {
                **base,
                "from": window.start,
                "to": window.end,
                "forecast_from": understood.forecast.start,
                "forecast_to": understood.forecast.end,
            }
        )
    return AnalysisArguments.model_validate(base)


def tool_specs() -> list[ToolSpec]:
    """Every analysis a question's reads may be, as a provider's tool."""
    return [ToolSpec(**analysis.schema()) for analysis in ANALYSES.values() if analysis.offered]


async def plan_analyses(
    agent: AgentScope,
    model: LanguageModel,
    understood: Understood,
    needs: IntentNeeds,
    context: AnalysisContext,
) -> list[PlannedAnalysis]:
    """The analyses to run: the intent's, or the provider's validated choice."""
    required = [*ALWAYS, *(n for n in needs.analyses if n not in ALWAYS)]
    if model.provider == BUILTIN_PROVIDER or needs.recommends:
        return [
            PlannedAnalysis(name, question_arguments(name, understood, context))
            for name in required
        ]
    chosen = await _chosen(agent, model, understood, context)
    names = {planned.name for planned in chosen}
    added = [name for name in needs.analyses if name not in names]
    if added:
        await agent.think("The answer needs " + ", ".join(added) + " as well; reading it.")
    return [
        *(
            PlannedAnalysis(name, question_arguments(name, understood, context))
            for name in [*ALWAYS, *added]
            if name not in names
        ),
        *chosen,
    ]


async def _chosen(
    agent: AgentScope, model: LanguageModel, understood: Understood, context: AnalysisContext
) -> list[PlannedAnalysis]:
    specs = tool_specs()
    messages = tool_messages(agent.context.text[:20_000], understood.question.model_dump_json())

    async def choose_analyses(**_arguments: Any) -> ChatResponse[None]:
        return await model.call_tools(messages, specs)

    agent.context.tools.register(
        "choose_analyses",
        choose_analyses,
        include_result=False,
        description="The language model chooses the analyses that answer the question.",
        summarize=lambda r: f"{len(r.tool_calls)} analyses chosen by {r.provider}",
    )
    result = await agent.call("choose_analyses", {"analyses_offered": len(specs)})
    if not result.ok:
        await agent.think(
            f"The language model did not choose ({result.error}); the question's "
            "own analyses are read."
        )
        return []
    response: ChatResponse[None] = result.result
    if response.fallback is not None:
        await agent.think(response.fallback.describe())
    for rejected in response.rejected_tool_calls:
        await agent.think(f"Call {rejected.name or '?'} refused: {rejected.reason}.")
    calls = response.tool_calls
    if len(calls) > MAX_TOOL_CALLS:
        await agent.think(
            f"The model asked for {len(calls)} analyses; only the first {MAX_TOOL_CALLS} are read."
        )
    chosen: list[PlannedAnalysis] = []
    for call in calls[:MAX_TOOL_CALLS]:
        if (
            call.name not in ANALYSES
            or not ANALYSES[call.name].offered
            or any(p.name == call.name for p in chosen)
        ):
            continue
        try:
            expected = question_arguments(call.name, understood, context)
            own = {
                key: value for key, value in call.arguments.items() if key not in _QUESTION_FIELDS
            }
            arguments = type(expected).model_validate({**expected.model_dump(by_alias=True), **own})
        except ValidationError as error:
            await agent.think(
                f"Call {call.name} refused: its arguments do not fit "
                f"({error.error_count()} errors)."
            )
            continue
        except ValueError as error:
            await agent.think(f"Call {call.name} refused: {error}.")
            continue
        if _asks_otherwise(call.arguments, arguments):
            await agent.think(
                f"{call.name}: the question's period and scope are read, not "
                "the ones the model asked for."
            )
        chosen.append(PlannedAnalysis(call.name, arguments))
    return chosen


def _asks_otherwise(asked: dict[str, Any], arguments: AnalysisArguments) -> bool:
    """Whether the model named a period or scope other than the question's (compared as
    values, so any spelling of the same time is the same)."""
    named = {key: value for key, value in asked.items() if key in _QUESTION_FIELDS}
    if not named:
        return False
    try:
        read = type(arguments).model_validate({**arguments.model_dump(by_alias=True), **named})
    except ValidationError:
        return True
    return read != arguments
