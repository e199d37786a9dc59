"""Cancel in the middle of a tool call: the tool really stops, the final event is agent_stopped
and the run is `cancelled` within 1 s, on both deployment shapes, over WebSocket and HTTP."""

import asyncio
import time
from typing import Any

import pytest

from tests.support.protocol_checks import check_run_stream, event_types
from tests.support.run_harness import WsClient, http, live_server, new_user
from tests.support.scripted_workflow import Agent, Call, ScriptedWorkflow, Think

CANCEL_DEADLINE_S = 1.0


class StoppableTool:
    """A tool that runs until cancelled, and records that it was."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self, **_arguments: Any) -> str:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return "finished"


@pytest.mark.parametrize("via", ["websocket", "http"])
async def test_cancel_mid_tool_call_ends_cancelled_within_a_second(deployment,  # type: ignore[no-untyped-def]
                                                                   via: str) -> None:
    tool = StoppableTool()
    workflow = ScriptedWorkflow(
        [Think("planning"), Agent("data", [Think("querying"), Call("long_query", {"days": 90})])],
        tools={"long_query": tool})
    async with live_server(deployment(), workflow) as server:
        user_id, token = await new_user(server)
        client = await WsClient.connect(server, token)
        run = await client.start_run("analyse a year of usage")
        await client.recv_until(lambda f: f.get("type") == "tool_executing")
        await asyncio.wait_for(tool.started.wait(), 5)
        started = time.monotonic()
        async with http(server, token) as api:
            if via == "websocket":
                await client.send({"type": "stop_run", "run_id": run["run_id"]})
            else:
                assert (await api.post(f"/api/runs/{run['run_id']}/cancel")).status_code == 202
            events_after = await client.recv_until(
                lambda f: f.get("payload", {}).get("final") is True, timeout=CANCEL_DEADLINE_S)
            state = (await api.get(f"/api/runs/{run['run_id']}")).json()["state"]
        elapsed = time.monotonic() - started
        assert elapsed < CANCEL_DEADLINE_S, f"cancel took {elapsed:.3f} s"
        assert state == "cancelled"
        assert tool.cancelled.is_set()
        assert event_types(events_after) == ["tool_completed", "agent_error", "agent_stopped"]
        assert events_after[0]["payload"]["status"] == "error"
        events = [f for f in client.frames if f.get("run_id") == run["run_id"] and "seq" in f]
        check_run_stream(events, run_id=run["run_id"], user_id=user_id,
                         state="cancelled")
        await client.send({"type": "stop_run", "run_id": run["run_id"]})
        await client.send({"type": "ping"})
        assert (await client.recv_until(lambda f: f["type"] == "pong"))[-1]["type"] == "pong"
        await client.close()
