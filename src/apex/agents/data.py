"""The data agent: reads the caller's usage for the analysed scope, one ledger query per tool.

Every tool reads the rows of the run's own user (bound here from the run context, never taken
from the question or the arguments) in the period named by its arguments, so the events show
exactly what was read. The reads run concurrently (each on its own ledger cursor in a worker
thread), so their `tool_completed` events arrive in the order they finish. The essential reads
(totals and the breakdowns) fail the run when the ledger cannot answer; an optional one that
fails only leaves its recommendation kind out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from apex.agents.scope import AnalysisScope, UsageData
from apex.analytics.ledger import Ledger
from apex.analytics.results import ColumnCoverage, UsagePeriod
from apex.errors import ServiceUnavailable
from apex.execution.workflow import AgentScope
from apex.llm.templates import usd as money

Read = Callable[[UsagePeriod], Awaitable[Any]]
ESSENTIAL = ("usage_totals", "usage_by_model", "usage_by_feature", "usage_by_day",
             "model_feature_mix")


def ledger_unavailable(error: str | None) -> ServiceUnavailable:
    """The run's error when the ledger cannot answer a read it cannot do without."""
    return ServiceUnavailable(f"The usage ledger could not answer ({error}).",
                              code="ledger_unavailable")


def period_of(arguments: dict[str, Any]) -> UsagePeriod:
    """The period named by a tool's `from`/`to` arguments."""
    return UsagePeriod.model_validate({"start": arguments["from"], "end": arguments["to"]})


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


class DataAgent:
    name = "data"
    task = "Read your usage for the period from the ledger"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def reads(self, tenant_id: str) -> dict[str, tuple[Read, Callable[[Any], str], str]]:
        """Every ledger read a run may ask, bound to one tenant: the read, how its result is
        summarised in the tool's event, and its description."""
        ledger = self.ledger
        return {
            "usage_totals": (lambda p: ledger.totals(tenant_id, p),
                             lambda t: f"{t.requests:,} requests, {money(float(t.cost_usd))}",
                             "Requests, tokens, cost and errors in the period."),
            "usage_by_model": (lambda p: ledger.by_model(tenant_id, p),
                               lambda r: _count(r, "model"), "Spend and latency per model."),
            "usage_by_feature": (lambda p: ledger.by_feature(tenant_id, p),
                                 lambda r: _count(r, "feature"), "Spend per feature."),
            "usage_by_day": (lambda p: ledger.by_day(tenant_id, p),
                             lambda r: _count(r, "day"), "Spend per day."),
            "model_feature_mix": (lambda p: ledger.by_model_feature(tenant_id, p),
                                  lambda r: _count(r, "model/feature group"),
                                  "Token mix per model and feature."),
            "latency_percentiles": (lambda p: ledger.latency_percentiles(tenant_id, p,
                                                                         overall=False),
                                    lambda r: _count(r.groups, "latency group"),
                                    "p50/p95/p99 latency and time to first token."),
            "duplicate_prompts": (lambda p: ledger.duplicate_prompts(tenant_id, p, top=0),
                                  lambda r: f"{r.duplicate_requests:,} repeated prompts",
                                  "Exact repeats of successful prompts."),
            "shared_prefixes": (lambda p: ledger.shared_prefixes(tenant_id, p),
                                lambda r: f"{r.repeated_prefix_tokens:,} prefix tokens resent",
                                "Prompt prefixes shared between calls."),
            "output_token_outliers": (
                lambda p: ledger.token_outliers(tenant_id, p, kind="output"),
                lambda r: _count(r, "group"), "Calls far above their group's output tokens."),
            "input_token_outliers": (
                lambda p: ledger.token_outliers(tenant_id, p, kind="input"),
                lambda r: _count(r, "group"), "Calls far above their group's input tokens."),
            "batchable_traffic": (lambda p: ledger.batchable_share(tenant_id, p),
                                  lambda r: f"{r.batchable_requests:,} batchable requests",
                                  "Traffic no user waits for."),
            "error_retry_waste": (lambda p: ledger.error_retry_waste(tenant_id, p),
                                  lambda r: f"{r.error_requests:,} failed, "
                                            f"{r.retry_requests:,} retries",
                                  "Failed calls and their retries."),
        }

    def register(self, agent: AgentScope, tenant_id: str) -> None:
        """The ledger reads, bound to the caller: the only tenant any of them can read."""
        for name, (read, summary, description) in self.reads(tenant_id).items():
            agent.context.tools.register(name, _tool(read), description=description,
                                         summarize=summary, include_result=False)

    async def run(self, agent: AgentScope, scope: AnalysisScope, coverage: ColumnCoverage, *,
                  full: bool) -> UsageData:
        self.register(agent, scope.tenant_id)
        arguments = scope.period_arguments()
        await agent.think(f"Reading {coverage.requests:,} calls from {arguments['from'][:10]} "
                          f"to {arguments['to'][:10]}.")

        optional = ["latency_percentiles"] if coverage.latency_rows else []
        if full:
            await agent.think("Reading the signals behind each kind of saving as well: "
                              "repeats, prefixes, token outliers, batchable traffic, failures.")
            if coverage.prompt_hash_rows:
                optional.append("duplicate_prompts")
            if coverage.prefix_hash_rows:
                optional.append("shared_prefixes")
            optional += ["output_token_outliers", "input_token_outliers", "batchable_traffic",
                         "error_retry_waste"]
        results = await asyncio.gather(*(agent.call(tool, arguments)
                                         for tool in (*ESSENTIAL, *optional)))
        failed = [r for r in results[:len(ESSENTIAL)] if not r.ok]
        if failed:
            raise ledger_unavailable(failed[0].error)
        totals, by_model, by_feature, by_day, mix = (r.result for r in results[:len(ESSENTIAL)])
        data = UsageData(totals=totals, coverage=coverage, by_model=by_model,
                         by_feature=by_feature, by_day=by_day, mix=mix)
        for result in results[len(ESSENTIAL):]:
            if result.ok:
                setattr(data, _FIELDS[result.tool_name], result.result)
            else:
                await agent.think(f"{result.tool_name.replace('_', ' ')} could not be read "
                                  f"({result.error}); that part of the analysis is left out.")
        agent.result_summary = (f"{data.totals.requests:,} calls, "
                                f"{money(float(data.totals.cost_usd))} read")
        return data


def _tool(read: Read) -> Callable[..., Awaitable[Any]]:
    async def tool(**arguments: Any) -> Any:
        return await read(period_of(arguments))

    return tool


_FIELDS = {"latency_percentiles": "latency", "duplicate_prompts": "duplicates",
           "shared_prefixes": "prefixes", "output_token_outliers": "output_outliers",
           "input_token_outliers": "input_outliers", "batchable_traffic": "batchable",
           "error_retry_waste": "errors"}
