"""Run a workflow the way the run manager does, on a real in-process bus, and read its events.

The supervisor's bracket and the final event are emitted exactly as `RunManager._execute` does;
the events come back as the envelopes a client receives, so `check_run_stream` applies.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from apex.agents.supervisor import SupervisorWorkflow
from apex.analytics.demo import DemoWorkload
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger import SqlLedger
from apex.analytics.pricing import PriceCatalog
from apex.execution.context import UserExecutionContext
from apex.execution.dispatcher import ToolDispatcher
from apex.execution.emitter import RunEmitter
from apex.execution.workflow import ThreadMessage, Workflow, WorkflowContext
from apex.llm import BuiltinModel, LanguageModel
from apex.realtime.memory import InProcessEventBus

END = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class RunRecord:
    events: list[dict[str, Any]]
    final_response: str
    report: dict[str, Any]
    ctx: UserExecutionContext

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == kind]

    def tool_calls(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(agent, tool, arguments) of every tool call, in order."""
        return [
            (e["agent_name"], e["payload"]["tool_name"], e["payload"]["arguments"])
            for e in self.of_type("tool_executing")
        ]

    def agents(self) -> list[str]:
        return [
            e["agent_name"]
            for e in self.of_type("agent_started")
            if e["agent_name"] != "supervisor"
        ]


def supervisor(
    ledger: SqlLedger, *, model: LanguageModel | None = None, today: date | None = None
) -> SupervisorWorkflow:
    """The app's workflow over `ledger`; `today` fixes the date relative periods resolve
    against (the real UTC date when None)."""
    catalog = PriceCatalog.load()
    extra = {} if today is None else {"today": lambda: today}
    return SupervisorWorkflow(
        ledger=ledger, catalog_for=lambda _user: catalog, model=model or BuiltinModel(), **extra
    )


async def run_workflow(
    workflow: Workflow, user_id: str, text: str, history: Sequence[ThreadMessage] = ()
) -> RunRecord:
    bus = InProcessEventBus(replay_max=100_000, replay_ttl_s=600, retained_runs=100)
    await bus.start()
    ctx = UserExecutionContext(
        user_id=user_id,
        thread_id="t-" + uuid.uuid4().hex[:12],
        run_id="r-" + uuid.uuid4().hex[:12],
        request_id="q-1",
    )
    emitter = RunEmitter(ctx, bus, task=text)
    try:
        await emitter.start_supervisor()
        outcome = await workflow.run(
            WorkflowContext(
                ctx=ctx,
                text=text,
                history=tuple(history),
                events=emitter,
                tools=ToolDispatcher(emitter, default_timeout_s=60),
            )
        )
        await emitter.finish_completed(
            outcome.final_response, outcome.report, summary=outcome.summary
        )
        events = [event.to_dict() for event in await bus.replay(ctx.run_id)]
    finally:
        await bus.close()
    return RunRecord(events, outcome.final_response, dict(outcome.report), ctx)


async def load_demo(ledger: SqlLedger, user_id: str, rows: int, seed: int = 7) -> None:
    status = await UsageImporter(ledger, PriceCatalog.load()).load_demo(
        user_id, rows=rows, seed=seed, end=END
    )
    assert status.rows_accepted == rows


def demo_rows(rows: int, seed: int = 7) -> list[dict[str, Any]]:
    """The generated rows themselves (naive UTC timestamps), to recompute figures in tests."""
    return [
        row for chunk in DemoWorkload(rows, seed, end=END).chunks() for row in chunk.to_pylist()
    ]


def answer(
    history_text: str,
    report: dict[str, Any],
    run_id: str = "r-earlier",
) -> list[ThreadMessage]:
    """A thread's earlier question and its stored answer."""
    at = END - timedelta(hours=1)
    return [
        ThreadMessage(role="user", text=history_text, run_id=run_id, created_at=at),
        ThreadMessage(
            role="assistant",
            text=report.get("markdown", ""),
            run_id=run_id,
            created_at=at,
            report=report,
        ),
    ]


def features_acted_on(recommendation: dict[str, Any]) -> set[str]:
    """The features a recommendation's evidence says it acts on (its spend, or its group)."""
    evidence = recommendation["evidence"]
    found = {share["feature"] for share in evidence.get("acts_on", [])}
    return found | ({evidence["feature"]} if "feature" in evidence else set())
