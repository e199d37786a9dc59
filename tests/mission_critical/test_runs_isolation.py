"""25 users with 2 connections each, all at once, on both deployment shapes: every connection
sees exactly its own user's runs, every run complete, in order, gap-free, one final event last."""

import asyncio
from collections import defaultdict
from typing import Any

from tests.support.protocol_checks import LIFECYCLE, check_run_stream
from tests.support.run_harness import WsClient, live_server, new_user
from tests.support.scripted_workflow import Agent, Call, ScriptedWorkflow, Sleep, Think, echo_tool

USERS = 25
SCRIPT = [
    Think("planning"),
    Sleep(0.02),
    Agent(
        "data",
        [Think("reading rows"), Call("echo", {"rows": 10}), Sleep(0.02)],
        summary="rows read",
    ),
    Agent("optimization", [Call("echo", {"model": "small"})], summary="one saving"),
    Think("writing the answer"),
]


async def collect(client: WsClient, run_ids: set[str]) -> list[dict[str, Any]]:
    """Every frame of the connection (from its start) until each run's final event arrived."""

    def finished() -> set[str]:
        return {f["run_id"] for f in client.frames if f.get("payload", {}).get("final") is True}

    async with asyncio.timeout(90):
        while finished() != run_ids:
            await client.recv(timeout=90)
    return client.frames


async def one_user(
    server, user_id: str, token: str
) -> tuple[str, set[str], list[list[dict[str, Any]]]]:  # type: ignore[no-untyped-def]
    first, second = await asyncio.gather(
        WsClient.connect(server, token), WsClient.connect(server, token)
    )
    accepted = await asyncio.gather(
        first.start_run(f"{user_id} on first"), second.start_run(f"{user_id} on second")
    )
    run_ids = {a["run_id"] for a in accepted}
    frames = await asyncio.gather(collect(first, run_ids), collect(second, run_ids))
    await asyncio.gather(first.close(), second.close())
    return user_id, run_ids, list(frames)


async def test_many_users_at_once_each_see_exactly_their_own_runs(deployment) -> None:  # type: ignore[no-untyped-def]
    workflow = ScriptedWorkflow(SCRIPT, tools={"echo": echo_tool})
    async with live_server(deployment(), workflow) as server:
        users = [await new_user(server) for _ in range(USERS)]
        results = await asyncio.gather(*(one_user(server, uid, token) for uid, token in users))
    all_runs = {run_id for _uid, runs, _frames in results for run_id in runs}
    assert len(all_runs) == USERS * 2
    for user_id, run_ids, per_connection in results:
        for frames in per_connection:
            events = [f for f in frames if "seq" in f]
            assert {e["user_id"] for e in events} == {user_id}
            assert {e["run_id"] for e in events} == run_ids
            by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for event in events:
                by_run[event["run_id"]].append(event)
            for run_id, run_events in by_run.items():
                check_run_stream(run_events, run_id=run_id, user_id=user_id, state="completed")
                assert {e["type"] for e in run_events} == LIFECYCLE
            others = [f for f in frames if "seq" not in f]
            assert {f["type"] for f in others} <= {
                "connection_ready",
                "message_accepted",
                "heartbeat",
            }
