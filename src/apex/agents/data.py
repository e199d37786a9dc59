"""The data agent: reads the caller's usage for the question's period and scope.

Every tool reads the rows of the run's own user (bound here from the run context, never taken
from the question or the arguments) in the period and scope named by its arguments, so the
events show exactly what was read. It always reads the scope's totals and per-model spend (the
report's `totals` and `by_model`), then the analyses the question's intent needs, and, for an
intent that recommends, the signals behind each kind of saving. The reads run concurrently (each
on its own ledger cursor in a worker thread), so their `tool_completed` events arrive in the
order they finish. The essential reads fail the run when the ledger cannot answer; an optional
one that fails only leaves its recommendation kind out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from apex.agents.analyses import AnalysisArguments, AnalysisContext, run_analysis
from apex.agents.intents import IntentNeeds
from apex.agents.planning import plan_analyses, question_arguments
from apex.agents.question import Understood
from apex.agents.report import unpriced_note
from apex.agents.scope import UsageData
from apex.analytics.filters import UsageFilter
from apex.analytics.ledger import Ledger
from apex.analytics.results import ColumnCoverage, ModelUsage, UsagePeriod, UsageTotals
from apex.errors import ServiceUnavailable
from apex.execution.workflow import AgentScope
from apex.llm import LanguageModel
from apex.money import format_usd

Read = Callable[[UsagePeriod, UsageFilter], Awaitable[Any]]


def ledger_unavailable(error: str | None) -> ServiceUnavailable:
    """The run's error when the ledger cannot answer a read it cannot do without."""
    return ServiceUnavailable(
        f"The usage ledger could not answer ({error}).", code="ledger_unavailable"
    )


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


@dataclass(slots=True)
class DataRead:
    """What the data agent read: the scope's totals and models, the intent's analyses, and for
    an intent that recommends, the signals the finders use."""

    totals: UsageTotals
    by_model: list[ModelUsage]
    results: dict[str, Any] = field(default_factory=dict)
    usage: UsageData | None = None


class DataAgent:
    name = "data"
    task = "Read your usage for the question's period and scope from the ledger"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def reads(self, tenant_id: str) -> dict[str, tuple[Read, Callable[[Any], str], str]]:
        """The signals behind each kind of saving, bound to one tenant: the read (of a period
        and scope), how its result is summarised in the tool's event, and its description."""
        ledger = self.ledger
        return {
            "model_feature_mix": (
                lambda p, w: ledger.by_model_feature(tenant_id, p, where=w),
                lambda r: _count(r, "model/feature group"),
                "Token mix per model and feature.",
            ),
            "latency_percentiles": (
                lambda p, w: ledger.latency_percentiles(tenant_id, p, overall=False, where=w),
                lambda r: _count(r.groups, "latency group"),
                "p50/p95/p99 latency and time to first token.",
            ),
            "duplicate_prompts": (
                lambda p, w: ledger.duplicate_prompts(tenant_id, p, top=0, where=w),
                lambda r: f"{r.duplicate_requests:,} repeated prompts",
                "Exact repeats of successful prompts.",
            ),
            "shared_prefixes": (
                lambda p, w: ledger.shared_prefixes(tenant_id, p, where=w),
                lambda r: f"{r.repeated_prefix_tokens:,} prefix tokens resent",
                "Prompt prefixes shared between calls.",
            ),
            "output_token_outliers": (
                lambda p, w: ledger.token_outliers(tenant_id, p, kind="output", where=w),
                lambda r: _count(r, "group"),
                "Calls far above their group's output tokens.",
            ),
            "input_token_outliers": (
                lambda p, w: ledger.token_outliers(tenant_id, p, kind="input", where=w),
                lambda r: _count(r, "group"),
                "Calls far above their group's input tokens.",
            ),
            "batchable_traffic": (
                lambda p, w: ledger.batchable_share(tenant_id, p, where=w),
                lambda r: f"{r.batchable_requests:,} batchable requests",
                "Traffic no user waits for.",
            ),
            "error_retry_waste": (
                lambda p, w: ledger.error_retry_waste(tenant_id, p, where=w),
                lambda r: f"{r.error_requests:,} failed, {r.retry_requests:,} retries",
                "Failed calls and their retries.",
            ),
        }

    async def run(
        self,
        agent: AgentScope,
        context: AnalysisContext,
        understood: Understood,
        needs: IntentNeeds,
        coverage: ColumnCoverage,
        model: LanguageModel,
    ) -> DataRead:
        assert understood.period is not None
        where = understood.where
        scope = question_arguments("usage_totals", understood, context)
        shown = scope.as_event()
        await agent.think(
            f"Reading {coverage.requests:,} calls from {shown['from'][:10]} to "
            f"{shown['to'][:10]}" + (f" for {', '.join(_names(where))}." if _names(where) else ".")
        )
        planned = await plan_analyses(agent, model, understood, needs, context)
        calls = [run_analysis(agent, context, p.name, p.arguments) for p in planned]
        signals = self._signals(agent, context, coverage, needs.finders)
        if signals:
            await agent.think(
                "Reading the signals behind the savings this question is about: "
                + ", ".join(name.replace("_", " ") for name in signals)
                + "."
            )
        results = await asyncio.gather(*calls, *(agent.call(name, shown) for name in signals))
        essential = results[: len(calls)]
        failed = [r for r in essential if not r.ok]
        if failed:
            raise ledger_unavailable(failed[0].error)
        results_by_name = {r.tool_name: r.result for r in essential}
        totals, by_model = results_by_name["usage_totals"], results_by_name["usage_by_model"]
        read = DataRead(totals=totals, by_model=by_model, results=results_by_name)
        if signals:
            read.usage = await self._usage(agent, totals, coverage, by_model, results[len(calls) :])
        agent.result_summary = (
            f"{totals.requests:,} calls, {format_usd(float(totals.cost_usd))}"
            f"{unpriced_note(totals.unpriced_requests)} read"
        )
        return read

    def _signals(
        self,
        agent: AgentScope,
        context: AnalysisContext,
        coverage: ColumnCoverage,
        finders: tuple[str, ...],
    ) -> list[str]:
        """Register the signal reads the finders need; the names of those worth reading."""
        if not finders:
            return []
        for name, (read, summary, description) in self.reads(context.tenant_id).items():
            agent.context.tools.register(
                name,
                _tool(read, context),
                description=description,
                summarize=summary,
                include_result=False,
            )
        present = {
            "latency_percentiles": coverage.latency_rows,
            "duplicate_prompts": coverage.prompt_hash_rows,
            "shared_prefixes": coverage.prefix_hash_rows,
        }
        wanted = dict.fromkeys(name for finder in finders for name in SIGNALS[finder])
        return [name for name in wanted if present.get(name, 1)]

    async def _usage(
        self,
        agent: AgentScope,
        totals: UsageTotals,
        coverage: ColumnCoverage,
        by_model: list[ModelUsage],
        results: list[Any],
    ) -> UsageData:
        mix = next(r for r in results if r.tool_name == "model_feature_mix")
        if not mix.ok:
            raise ledger_unavailable(mix.error)
        data = UsageData(totals=totals, coverage=coverage, by_model=by_model, mix=mix.result)
        for result in results:
            if result is mix:
                continue
            if result.ok:
                setattr(data, _FIELDS[result.tool_name], result.result)
            else:
                await agent.think(
                    f"{result.tool_name.replace('_', ' ')} could not be read "
                    f"({result.error}); that part of the analysis is left out."
                )
        return data


def _names(where: UsageFilter) -> list[str]:
    return [*where.models, *where.providers, *where.features]


def _tool(read: Read, context: AnalysisContext) -> Callable[..., Awaitable[Any]]:
    """A signal read as a tool: its arguments are the period and scope, like an analysis's."""

    async def tool(**arguments: Any) -> Any:
        scope = AnalysisArguments.model_validate(arguments)
        return await read(scope.period, scope.where(context))

    return tool


# the reads each finder works on (the token mix per model and feature: every finder's spend)
SIGNALS: dict[str, tuple[str, ...]] = {
    "find_model_routing": ("model_feature_mix",),
    "find_prompt_caching": ("model_feature_mix", "duplicate_prompts", "shared_prefixes"),
    "find_batch_api": ("model_feature_mix", "batchable_traffic"),
    "find_token_outliers": ("model_feature_mix", "output_token_outliers", "input_token_outliers"),
    "find_error_retry_waste": ("model_feature_mix", "error_retry_waste"),
    "find_latency_outliers": ("model_feature_mix", "latency_percentiles"),
}
_FIELDS = {
    "latency_percentiles": "latency",
    "duplicate_prompts": "duplicates",
    "shared_prefixes": "prefixes",
    "output_token_outliers": "output_outliers",
    "input_token_outliers": "input_outliers",
    "batchable_traffic": "batchable",
    "error_retry_waste": "errors",
}
