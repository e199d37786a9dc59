"""The agents behind the HTTP API: threads keep the report and answer follow-ups, a stopped run
really stops, and a configured provider is called and metered into the caller's own ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.support.accounts import make_user
from tests.support.agent_harness import features_acted_on
from tests.support.asgi import running_app
from tests.support.llm_stubs import Failure, LlmStub, Structured, Text, ToolCalls, Usage
from tests.support.protocol_checks import check_run_stream
from tests.support.run_harness import wait_until_ended


async def wait_done(
    client: httpx.AsyncClient, headers: dict[str, str], run_id: str
) -> dict[str, Any]:
    """Agent runs over a loaded ledger may take longer than the run layer's default wait."""
    return await wait_until_ended(client, headers, run_id, timeout=60)


async def events_of(app: FastAPI, run_id: str) -> list[dict[str, Any]]:
    return [event.to_dict() for event in await app.state.event_bus.replay(run_id)]


async def ask(
    client: httpx.AsyncClient, headers: dict[str, str], text: str, thread_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if thread_id:
        body["thread_id"] = thread_id
    accepted = await client.post("/api/runs", json=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    return await wait_done(client, headers, accepted.json()["run_id"])


async def test_a_thread_holds_each_report_and_follow_ups_use_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user_id, headers = await make_user(app)
    loaded = await client.post("/api/usage/demo", json={"rows": 5_000, "seed": 3}, headers=headers)
    assert loaded.status_code == 200, loaded.text
    first = await ask(client, headers, "How can I cut my AI costs?")
    assert first["state"] == "completed", first
    assert first["report"]["recommendations"] and first["report"]["by_model"]
    follow = await ask(client, headers, "and only for summarization?", first["thread_id"])
    assert follow["state"] == "completed" and follow["thread_id"] == first["thread_id"]
    summary = (await client.get("/api/usage/summary", headers=headers)).json()
    summarization = next(f for f in summary["by_feature"] if f["feature"] == "summarization")
    assert follow["report"]["totals"]["requests"] == summarization["requests"]
    assert round(follow["report"]["totals"]["cost_usd"], 2) == round(summarization["cost_usd"], 2)
    assert all(
        feature == "summarization"
        for r in follow["report"]["recommendations"]
        for feature in features_acted_on(r)
    )
    messages = (
        await client.get(f"/api/threads/{first['thread_id']}/messages", headers=headers)
    ).json()["items"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    for message, run in ((messages[1], first), (messages[3], follow)):
        assert message["run_id"] == run["run_id"]
        assert message["text"] == run["final_response"]
        assert message["report"] == run["report"]
    check_run_stream(
        await events_of(app, follow["run_id"]),
        run_id=follow["run_id"],
        user_id=user_id,
        state="completed",
    )


async def test_stopping_a_run_mid_workflow_ends_it_with_agent_stopped(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", step_delay_ms=5_000
    )
    async with running_app(settings) as (app, client):
        user_id, headers = await make_user(app)
        await client.post("/api/usage/demo", json={"rows": 2_000}, headers=headers)
        accepted = (
            await client.post("/api/runs", json={"text": "Cut my costs"}, headers=headers)
        ).json()
        run_id = accepted["run_id"]
        async with asyncio.timeout(20):
            while not any(
                e["type"] == "agent_completed" and e["agent_name"] == "triage"
                for e in await events_of(app, run_id)
            ):
                await asyncio.sleep(0.02)
        stopped = await client.post(f"/api/runs/{run_id}/cancel", headers=headers)
        assert stopped.status_code == 202
        run = await wait_done(client, headers, run_id)
        events = await events_of(app, run_id)
    assert run["state"] == "cancelled"
    check_run_stream(events, run_id=run_id, user_id=user_id, state="cancelled")
    assert events[-1]["type"] == "agent_stopped"
    assert not any(e["agent_name"] in ("optimization", "actions", "reporting") for e in events)


async def test_a_configured_provider_classifies_writes_and_is_metered(
    make_settings,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    openai_stub: LlmStub,
) -> None:
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
        llm_provider="openai",
        llm_model="gpt-4o-mini",
        llm_base_url=openai_stub.base_url + "/v1",
        llm_max_attempts=1,
    )
    async with running_app(settings) as (app, client):
        user_id, headers = await make_user(app)
        other_id, _other = await make_user(app)
        await client.post("/api/usage/demo", json={"rows": 2_000}, headers=headers)
        openai_stub.script(
            Structured(
                {"category": "cost", "confidence": 0.9}, Usage(input_tokens=900, output_tokens=40)
            ),
            Text("Provider prose about your spend.", Usage(input_tokens=3_000, output_tokens=250)),
        )
        run = await ask(client, headers, "How can I cut my AI costs?")
        ledger = app.state.ledger
        mine = await ledger.by_feature(user_id)
        openai_stub.script(Failure(503))
        fell_back = await ask(client, headers, "Why is my p95 latency so high?")
        events = await events_of(app, fell_back["run_id"])
        after = next(f for f in await ledger.by_feature(user_id) if f.feature == "apex")
        theirs = await ledger.totals(other_id)
    assert run["state"] == "completed"
    assert "Provider prose about your spend." in run["final_response"]
    assert [r.body["model"] for r in openai_stub.requests][:2] == ["gpt-4o-mini"] * 2
    apex_rows = next(f for f in mine if f.feature == "apex")
    assert apex_rows.requests == 2 and apex_rows.errors == 0
    assert apex_rows.input_tokens == 900 + 3_000 and apex_rows.output_tokens == 40 + 250
    expected = (Decimal(3_900) * Decimal("0.15") + Decimal(290) * Decimal("0.60")) / 1_000_000
    assert apex_rows.cost_usd.quantize(Decimal("0.000001")) == expected.quantize(
        Decimal("0.000001")
    )
    assert theirs.requests == 0
    assert after.errors >= 1 and after.requests == 2 + after.errors
    assert fell_back["state"] == "completed"
    notices = [
        e["payload"]["thought"]
        for e in events
        if e["type"] == "agent_thinking" and "did not answer" in e["payload"]["thought"]
    ]
    assert notices and "openai:gpt-4o-mini" in notices[0]


async def test_own_metered_calls_never_move_the_period_or_enter_an_answer(
    make_settings,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    openai_stub: LlmStub,
) -> None:
    """Data that ends in the past, a provider whose calls are metered into the same ledger at
    "now": the report's period stays the 30 days before the newest uploaded row, the figures
    hold only the uploaded rows, and the chat run's stored reads survive the metered writes."""
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
        llm_provider="openai",
        llm_model="gpt-4o-mini",
        llm_base_url=openai_stub.base_url + "/v1",
        llm_max_attempts=1,
    )
    end = datetime(2026, 1, 1, tzinfo=UTC)
    plan = Structured(
        {"category": "reporting", "intent": "spend", "confidence": 0.9},
        Usage(input_tokens=900, output_tokens=40),
    )
    tools = ToolCalls(
        [("usage_totals", {}), ("breakdown", {"dimension": "model"})],
        Usage(input_tokens=1_200, output_tokens=30),
    )
    prose = Text("Here is your spend.", Usage(input_tokens=1_000, output_tokens=50))
    async with running_app(settings) as (app, client):
        user_id, headers = await make_user(app)
        await app.state.usage_importer.load_demo(user_id, rows=2_000, seed=3, end=end)
        ledger = app.state.ledger
        uploaded = await ledger.totals(user_id)
        openai_stub.script(plan, tools, prose)
        first = await ask(client, headers, "How much did we spend?")
        misses = ledger.answers.misses
        openai_stub.script(plan, tools, prose)
        second = await ask(client, headers, "How much did we spend?")
        repeated_misses = ledger.answers.misses - misses
        own = next(f for f in await ledger.by_feature(user_id) if f.feature == "apex")
    assert own.requests == 6
    for run in (first, second):
        report = run["report"]
        assert report["question"]["intent"] == "spend"
        assert report["period"]["to"] <= "2026-01-01T00:00:00.001Z"
        assert report["totals"]["requests"] == uploaded.requests
        assert report["answer"]["figures"]["requests"] == uploaded.requests
        assert Decimal(str(report["answer"]["figures"]["cost_usd"])) == uploaded.cost_usd.quantize(
            Decimal("0.01")
        )
    assert second["report"]["period"] == first["report"]["period"]
    # the second run's reads were all stored ones; only the names (which see every row) ran
    assert repeated_misses <= 1


async def test_a_run_past_its_timeout_ends_in_timeout_with_every_agent_closed(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
        step_delay_ms=3_000,
        run_timeout_s=1.0,
    )
    async with running_app(settings) as (app, client):
        user_id, headers = await make_user(app)
        await client.post("/api/usage/demo", json={"rows": 1_000}, headers=headers)
        run = await ask(client, headers, "Cut my costs")
        events = await events_of(app, run["run_id"])
    assert run["state"] == "timeout" and run["error"]["code"] == "run_timeout"
    check_run_stream(events, run_id=run["run_id"], user_id=user_id, state="timeout")
    assert [e["agent_name"] for e in events if e["type"] == "agent_completed"] == ["triage"]


async def test_an_unreachable_ledger_fails_the_run_with_a_clear_error(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from tests.support.services import free_port

    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
        clickhouse_url=f"http://127.0.0.1:{free_port()}",
    )
    async with running_app(settings) as (app, client):
        user_id, headers = await make_user(app)
        run = await ask(client, headers, "How can I cut my AI costs?")
        events = await events_of(app, run["run_id"])
    assert run["state"] == "failed" and run["error"]["code"] == "ledger_unavailable"
    check_run_stream(events, run_id=run["run_id"], user_id=user_id, state="failed")
    triage_end = [e for e in events if e["agent_name"] == "triage"][-1]
    assert triage_end["type"] == "agent_error"
    assert triage_end["payload"]["error"]["code"] == "ledger_unavailable"
