"""Every bad frame of PROTOCOL.md section 2 gets the error shape and the socket stays open, on
both deployment shapes; after all of them the same connection still runs a whole run."""

import json
from typing import Any

from tests.support.protocol_checks import check_run_stream
from tests.support.run_harness import WsClient, live_server, new_user
from tests.support.scripted_workflow import FIVE_EVENT_SCRIPT, ScriptedWorkflow, echo_tool


def bad_frames(foreign_run: str, foreign_thread: str) -> list[tuple[str | bytes, str, Any]]:
    """(frame as sent, expected error code, expected ref)."""
    return [
        ("{not json", "invalid_json", None),
        ("", "invalid_json", None),
        ('{"type": "user_message", "text": "unterminated', "invalid_json", None),
        ("[]", "invalid_frame", None),
        ("42", "invalid_frame", None),
        ("null", "invalid_frame", None),
        (b"\x00\x01binary", "invalid_frame", None),
        ('{"client_message_id": "m1"}', "missing_field", "m1"),
        ('{"type": "teleport", "client_message_id": "m2"}', "unknown_type", "m2"),
        ('{"type": ["user_message"]}', "unknown_type", None),
        ('{"type": "user_message", "client_message_id": "m3"}', "missing_field", "m3"),
        ('{"type": "user_message", "text": "", "client_message_id": "m4"}', "missing_text", "m4"),
        ('{"type": "user_message", "text": {"a": 1}, "client_message_id": 5}', "missing_text", 5),
        (
            json.dumps({"type": "user_message", "text": "x" * 20_001, "client_message_id": "m6"}),
            "text_too_long",
            "m6",
        ),
        ('{"type": "user_message", "text": "hi", "thread_id": 3}', "invalid_field", None),
        (
            json.dumps(
                {
                    "type": "user_message",
                    "text": "hi",
                    "thread_id": foreign_thread,
                    "client_message_id": "m7",
                }
            ),
            "thread_not_found",
            "m7",
        ),
        ('{"type": "stop_run", "client_message_id": "m8"}', "missing_field", "m8"),
        ('{"type": "stop_agent", "run_id": 17}', "invalid_field", None),
        (
            json.dumps({"type": "stop_run", "run_id": foreign_run, "client_message_id": "m9"}),
            "run_not_found",
            "m9",
        ),
        ('{"type": "stop_run", "run_id": "0000000000000000"}', "run_not_found", None),
        ('{"type": "resume", "after_seq": 3}', "missing_field", None),
        (
            json.dumps({"type": "resume", "run_id": foreign_run, "after_seq": 0}),
            "run_not_found",
            None,
        ),
        (
            '{"type": "resume", "run_id": "nope", "after_seq": 0, "client_message_id": "m10"}',
            "run_not_found",
            "m10",
        ),
        (
            json.dumps({"type": "resume", "run_id": foreign_run, "after_seq": "zero"}),
            "invalid_field",
            None,
        ),
        (
            json.dumps({"type": "resume", "run_id": "x" * 10_000, "after_seq": 0}),
            "run_not_found",
            None,
        ),
    ]


async def test_every_bad_frame_gets_the_error_shape_and_the_socket_stays_open(  # type: ignore[no-untyped-def]
    deployment,
) -> None:
    workflow = ScriptedWorkflow(FIVE_EVENT_SCRIPT, tools={"echo": echo_tool})
    settings = deployment(ws_heartbeat_s=3_600)
    async with live_server(settings, workflow) as server:
        user_id, token = await new_user(server)
        _other, other_token = await new_user(server)
        other = await WsClient.connect(server, other_token)
        foreign = await other.start_run("not yours")
        await other.events_until_final(foreign["run_id"])
        client = await WsClient.connect(server, token)
        for frame, code, ref in bad_frames(foreign["run_id"], foreign["thread_id"]):
            if isinstance(frame, bytes):
                await client.connection.send(frame)
            else:
                await client.send(frame)
            error = await client.recv()
            assert error == {
                "type": "error",
                "error": {"code": code, "message": error["error"]["message"]},
                "ref": ref,
            }, frame
            assert isinstance(error["error"]["message"], str) and error["error"]["message"]
            await client.send({"type": "ping"})
            assert (await client.recv())["type"] == "pong", frame
        run = await client.start_run("still works")
        events = await client.events_until_final(run["run_id"])
        check_run_stream(events, run_id=run["run_id"], user_id=user_id, state="completed")
        assert not [f for f in client.frames if f.get("run_id") == foreign["run_id"]]
        await client.close()
        await other.close()
