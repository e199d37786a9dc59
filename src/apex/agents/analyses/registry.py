"""The analyses a run can ask for: typed tools in one registry.

An analysis is an async function of a run context (whose rows: the caller, never an argument)
and typed arguments (the period, the scope and its own parameters), returning a typed result.
Its arguments' JSON schema and its one-line description are what a language model sees when it
plans with tools; its name and validated arguments are what the run's `tool_executing` event
shows. Adding an analysis is writing one such function and decorating it with `@analysis`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from apex.agents.scope import UsageData
from apex.analytics.filters import UsageFilter
from apex.analytics.ledger import Ledger
from apex.analytics.pricing import PriceCatalog
from apex.analytics.results import UsagePeriod
from apex.execution.workflow import AgentScope
from apex.timestamps import as_utc, format_timestamp

MAX_NAMES = 20


@dataclass(frozen=True, slots=True)
class AnalysisContext:
    """What an analysis reads with, bound to the run: the caller's tenant is the only one."""

    tenant_id: str
    ledger: Ledger
    catalog: PriceCatalog
    # features no analysis of this run counts (the platform's own calls, unless asked about)
    exclude_features: tuple[str, ...] = ()
    # the caller's newest analysed row (a forecast's base window ends on its day)
    newest: datetime | None = None
    # the signals the data agent read for the recommendation finders, once read
    usage: UsageData | None = None


class AnalysisArguments(BaseModel):
    """The period and the scope every analysis takes; an analysis adds its own fields."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    start: AwareDatetime = Field(alias="from", description="period start, ISO 8601 UTC")
    end: AwareDatetime = Field(alias="to", description="period end (exclusive), ISO 8601 UTC")
    models: list[str] = Field(default_factory=list, max_length=MAX_NAMES)
    providers: list[str] = Field(default_factory=list, max_length=MAX_NAMES)
    features: list[str] = Field(default_factory=list, max_length=MAX_NAMES)

    @property
    def period(self) -> UsagePeriod:
        return UsagePeriod(start=self.start, end=self.end)

    def where(self, context: AnalysisContext) -> UsageFilter:
        return UsageFilter(
            models=tuple(self.models),
            providers=tuple(self.providers),
            features=tuple(self.features),
            exclude_features=context.exclude_features,
        )

    def as_event(self) -> dict[str, Any]:
        """The arguments as the tool's event shows them (times with milliseconds, as every
        time of the protocol)."""
        data = self.model_dump(mode="json", by_alias=True)
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, datetime):
                data[field.alias or name] = format_timestamp(as_utc(value))
        return data


ArgumentsT = TypeVar("ArgumentsT", bound=AnalysisArguments)
ResultT = TypeVar("ResultT")


@dataclass(frozen=True, slots=True)
class Analysis(Generic[ArgumentsT, ResultT]):
    name: str
    description: str
    arguments: type[ArgumentsT]
    function: Callable[[AnalysisContext, ArgumentsT], Awaitable[ResultT]]
    summarize: Callable[[ResultT], str]
    # offered to a model that plans a question's reads; the finders (they work on the signals
    # read, `AnalysisContext.usage`) and the budget fit (it needs their combined saving) run
    # for the intents that recommend instead
    offered: bool = True

    def bound(self, context: AnalysisContext) -> Callable[..., Awaitable[ResultT]]:
        """The tool for one run: validates its keyword arguments, then reads."""

        async def tool(**arguments: Any) -> ResultT:
            return await self.function(context, self.arguments.model_validate(arguments))

        return tool

    def schema(self) -> dict[str, Any]:
        """The tool as a provider's tool-calling API describes it."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.arguments.model_json_schema(by_alias=True),
        }


ANALYSES: dict[str, Analysis[Any, Any]] = {}


def analysis(
    name: str,
    description: str,
    arguments: type[ArgumentsT],
    summarize: Callable[[ResultT], str],
    *,
    offered: bool = True,
) -> Callable[
    [Callable[[AnalysisContext, ArgumentsT], Awaitable[ResultT]]],
    Callable[[AnalysisContext, ArgumentsT], Awaitable[ResultT]],
]:
    """Register the decorated function as the analysis `name`."""

    def register(
        function: Callable[[AnalysisContext, ArgumentsT], Awaitable[ResultT]],
    ) -> Callable[[AnalysisContext, ArgumentsT], Awaitable[ResultT]]:
        if name in ANALYSES:
            raise ValueError(f"analysis {name!r} is defined twice")
        ANALYSES[name] = Analysis(name, description, arguments, function, summarize, offered)
        return function

    return register


async def run_analysis(
    agent: AgentScope, context: AnalysisContext, name: str, arguments: AnalysisArguments
) -> Any:
    """Run one analysis as a tool of `agent`, so its events carry its real arguments; returns
    the tool result (the caller decides what a failure means)."""
    found = ANALYSES[name]
    tools = agent.context.tools
    if name not in tools.tools:
        tools.register(
            name,
            found.bound(context),
            description=found.description,
            summarize=found.summarize,
            include_result=False,
        )
    return await agent.call(name, arguments.as_event())
