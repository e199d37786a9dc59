"""PROTOCOL.md section 3 as an executable check on one run's received events."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import httpx

ENVELOPE_KEYS = {
    "type",
    "event_id",
    "seq",
    "run_id",
    "thread_id",
    "user_id",
    "agent_name",
    "timestamp",
    "payload",
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
FINAL_TYPE_BY_STATE = {
    "completed": "agent_completed",
    "failed": "agent_error",
    "timeout": "agent_error",
    "cancelled": "agent_stopped",
}
LIFECYCLE = {
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
}


def check_run_stream(
    events: Sequence[dict[str, Any]], *, run_id: str, user_id: str, state: str | None = None
) -> None:
    """Envelope, gap-free seq from 1, order and brackets, and exactly one final event, last."""
    assert events, "no events"
    for event in events:
        assert set(event) == ENVELOPE_KEYS, event
        assert event["run_id"] == run_id and event["user_id"] == user_id, event
        assert TIMESTAMP.match(event["timestamp"]), event["timestamp"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["event_id"] for e in events}) == len(events)
    assert len({e["thread_id"] for e in events}) == 1
    first = events[0]
    assert (first["type"], first["agent_name"]) == ("agent_started", "supervisor"), first
    finals = [i for i, e in enumerate(events) if e["payload"].get("final") is True]
    assert finals == [len(events) - 1], f"final events at {finals} of {len(events)}"
    open_agents: set[str] = set()
    open_tools: dict[str, str] = {}
    for event in events[1:-1]:
        kind, agent, payload = event["type"], event["agent_name"], event["payload"]
        if kind == "agent_started":
            assert agent != "supervisor" and agent not in open_agents, event
            open_agents.add(agent)
        elif kind in ("agent_completed", "agent_error"):
            assert agent in open_agents, event
            open_agents.remove(agent)
        elif kind == "agent_thinking":
            assert agent == "supervisor" or agent in open_agents, event
            assert isinstance(payload["thought"], str)
        elif kind == "tool_executing":
            assert agent == "supervisor" or agent in open_agents, event
            assert payload["tool_call_id"] not in open_tools
            open_tools[payload["tool_call_id"]] = payload["tool_name"]
            assert isinstance(payload["arguments"], dict)
        elif kind == "tool_completed":
            assert open_tools.pop(payload["tool_call_id"]) == payload["tool_name"], event
            assert payload["status"] in ("ok", "error", "timeout")
            assert isinstance(payload["duration_ms"], (int, float)) and payload["duration_ms"] >= 0
            assert isinstance(payload["result_summary"], str)
        else:
            raise AssertionError(f"unexpected event {event}")
    assert not open_agents and not open_tools, (open_agents, open_tools)
    last = events[-1]
    assert last["agent_name"] == "supervisor"
    final_state = last["payload"]["state"]
    assert FINAL_TYPE_BY_STATE[final_state] == last["type"], last
    if state is not None:
        assert final_state == state, last
    if final_state == "completed":
        assert isinstance(last["payload"]["final_response"], str)
        assert isinstance(last["payload"]["report"], dict)
    elif final_state in ("failed", "timeout"):
        assert set(last["payload"]["error"]) == {"code", "message"}


def event_types(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def error_code(response: httpx.Response) -> str:
    """The code of an error answer, which must have exactly PROTOCOL.md's error shape."""
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return str(body["error"]["code"])
