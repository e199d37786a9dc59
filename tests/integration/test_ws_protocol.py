"""/ws frames on both deployment shapes: runs over the socket, every connection of the user,
nobody else, ping and heartbeats, foreign runs, and the frame size limit."""

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support.protocol_checks import TIMESTAMP, check_run_stream
from tests.support.run_harness import LiveServer, WsClient, live_server, new_user
from tests.support.scripted_workflow import (
    FIVE_EVENT_SCRIPT,
    Call,
    ScriptedWorkflow,
    echo_tool,
    sleeping_tool,
)
from tests.support.services import free_port


@pytest.fixture
async def server(deployment) -> AsyncIterator[LiveServer]:  # type: ignore[no-untyped-def]
    workflow = ScriptedWorkflow(
        FIVE_EVENT_SCRIPT,
        tools={"echo": echo_tool, "slow": sleeping_tool(30)},
        script_for=lambda text: [Call("slow")] if text == "slow" else FIVE_EVENT_SCRIPT,
    )
    settings = deployment(ws_heartbeat_s=0.4, ws_max_frame_bytes=2048)
    async with live_server(settings, workflow) as running:
        yield running


async def test_a_run_started_on_one_connection_reaches_all_of_the_users(server: LiveServer) -> None:
    user_id, token = await new_user(server)
    _other, other_token = await new_user(server)
    starter = await WsClient.connect(server, token)
    watcher = await WsClient.connect(server, token)
    stranger = await WsClient.connect(server, other_token)
    accepted = await starter.start_run("what does GPT-4 cost me?")
    assert set(accepted) == {"type", "client_message_id", "thread_id", "run_id"}
    for client in (starter, watcher):
        events = await client.events_until_final(accepted["run_id"])
        check_run_stream(events, run_id=accepted["run_id"], user_id=user_id, state="completed")
        assert {e["thread_id"] for e in events} == {accepted["thread_id"]}
    await stranger.send({"type": "ping"})
    frames = await stranger.recv_until(lambda f: f["type"] == "pong")
    assert all("run_id" not in f for f in frames)
    for client in (starter, watcher, stranger):
        await client.close()


async def test_ping_pong_and_heartbeats(server: LiveServer) -> None:
    _user, token = await new_user(server)
    client = await WsClient.connect(server, token)
    await client.send({"type": "ping", "client_message_id": "p1"})
    pong = await client.reply()
    assert pong["type"] == "pong" and TIMESTAMP.match(pong["server_time"])
    heartbeat = await client.recv(timeout=5)
    assert heartbeat["type"] == "heartbeat" and TIMESTAMP.match(heartbeat["server_time"])
    await client.close()


async def test_stop_agent_alias_and_follow_up_in_the_same_thread(server: LiveServer) -> None:
    user_id, token = await new_user(server)
    client = await WsClient.connect(server, token)
    slow = await client.start_run("slow")
    await client.recv_until(lambda f: f.get("type") == "tool_executing")
    await client.send({"type": "stop_agent", "run_id": slow["run_id"]})
    events = await client.recv_until(lambda f: f.get("payload", {}).get("final") is True)
    assert events[-1]["type"] == "agent_stopped"
    follow_up = await client.start_run("and now?", thread_id=slow["thread_id"])
    assert follow_up["thread_id"] == slow["thread_id"]
    events = await client.events_until_final(follow_up["run_id"])
    check_run_stream(events, run_id=follow_up["run_id"], user_id=user_id, state="completed")
    await client.close()


async def test_another_users_runs_and_threads_do_not_exist(server: LiveServer) -> None:
    _owner, owner_token = await new_user(server)
    _intruder, intruder_token = await new_user(server)
    owner = await WsClient.connect(server, owner_token)
    intruder = await WsClient.connect(server, intruder_token)
    run = await owner.start_run("slow")
    probes = [
        ({"type": "stop_run", "run_id": run["run_id"], "client_message_id": "a"}, "run_not_found"),
        (
            {"type": "resume", "run_id": run["run_id"], "after_seq": 0, "client_message_id": "b"},
            "run_not_found",
        ),
        (
            {"type": "resume", "run_id": "f" * 32, "after_seq": 0, "client_message_id": "c"},
            "run_not_found",
        ),
        (
            {
                "type": "user_message",
                "text": "hi",
                "thread_id": run["thread_id"],
                "client_message_id": "d",
            },
            "thread_not_found",
        ),
    ]
    for frame, code in probes:
        await intruder.send(frame)
        error = await intruder.reply()
        assert error == {
            "type": "error",
            "error": {"code": code, "message": error["error"]["message"]},
            "ref": frame["client_message_id"],
        }
    await owner.send({"type": "stop_run", "run_id": run["run_id"]})
    events = await owner.events_until_final(run["run_id"])
    assert events[-1]["type"] == "agent_stopped"
    for client in (owner, intruder):
        await client.close()


async def test_frames_over_the_limit_close_1009(server: LiveServer) -> None:
    _user, token = await new_user(server)
    client = await WsClient.connect(server, token)
    at_limit = json.dumps({"type": "ping", "pad": ""})
    at_limit = json.dumps({"type": "ping", "pad": "x" * (2048 - len(at_limit))})
    assert len(at_limit) == 2048
    await client.send(at_limit)
    assert (await client.reply())["type"] == "pong"
    await client.send(json.dumps({"type": "ping", "pad": "x" * 4096}))
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_binary_frames_are_refused_and_the_socket_stays_open(server: LiveServer) -> None:
    _user, token = await new_user(server)
    client = await WsClient.connect(server, token)
    await client.connection.send(b'{"type":"ping"}')
    error = await client.reply()
    assert error["type"] == "error" and error["error"]["code"] == "invalid_frame"
    await client.send({"type": "ping"})
    assert (await client.reply())["type"] == "pong"
    await client.close()


async def test_a_closing_client_leaves_the_run_running(server: LiveServer) -> None:
    user_id, token = await new_user(server)
    client = await WsClient.connect(server, token)
    run = await client.start_run("slow")
    await client.recv_until(lambda f: f.get("type") == "tool_executing")
    await client.close()
    await asyncio.sleep(0.2)
    assert (await server.app.state.run_manager.get(user_id, run["run_id"])).state == "running"
    again = await WsClient.connect(server, token)
    await again.send({"type": "resume", "run_id": run["run_id"], "after_seq": 0})
    await again.send({"type": "stop_run", "run_id": run["run_id"]})
    events = await again.events_until_final(run["run_id"])
    check_run_stream(events, run_id=run["run_id"], user_id=user_id, state="cancelled")
    await again.close()


async def test_a_raw_websocket_client_without_the_helpers(server: LiveServer) -> None:
    _user, token = await new_user(server)
    async with websockets.connect(
        server.ws_url,
        subprotocols=["apex.v1", f"bearer.{token}"],  # type: ignore[list-item]
        ping_interval=None,
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "connection_ready"
        await ws.send(json.dumps({"type": "user_message", "content": "hello"}))
        accepted = json.loads(await ws.recv())
        while accepted["type"] == "heartbeat":
            accepted = json.loads(await ws.recv())
        assert accepted["type"] == "message_accepted" and accepted["client_message_id"] is None
        first = json.loads(await ws.recv())
        while first["type"] == "heartbeat":  # this server beats every 0.4 s of silence
            first = json.loads(await ws.recv())
        assert (first["type"], first["seq"], first["run_id"]) == (
            "agent_started",
            1,
            accepted["run_id"],
        )


async def test_without_its_event_bus_a_connection_closes_1011(make_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'down.db'}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    async with live_server(settings, ScriptedWorkflow([])) as running:
        _user, token = await new_user(running)
        async with websockets.connect(
            running.ws_url, ping_interval=None, subprotocols=["apex.v1", f"bearer.{token}"]
        ) as ws:  # type: ignore[list-item]
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
