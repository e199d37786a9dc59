"""Client frames of PROTOCOL.md section 2: every valid shape, every bad one, aliases, refs."""

import json

import pytest

from apex.api.ws_frames import (
    FrameError,
    PingFrame,
    ResumeFrame,
    StopRunFrame,
    UserMessageFrame,
    parse_frame,
)


@pytest.mark.parametrize("alias", ["text", "content", "message"])
def test_user_message_and_its_aliases(alias: str) -> None:
    frame = parse_frame(
        json.dumps(
            {
                "type": "user_message",
                alias: "hi",
                "thread_id": "t1",
                "client_message_id": "c1",
                "extra": [1, 2],
            }
        )
    )
    assert frame == UserMessageFrame(text="hi", thread_id="t1", client_message_id="c1")


@pytest.mark.parametrize("kind", ["stop_run", "stop_agent"])
def test_stop_run_and_its_alias(kind: str) -> None:
    assert parse_frame(json.dumps({"type": kind, "run_id": "r1"})) == StopRunFrame("r1", None)


def test_resume_and_ping() -> None:
    assert parse_frame('{"type":"resume","run_id":"r1","after_seq":7}') == ResumeFrame(
        "r1", 7, None
    )
    assert parse_frame('{"type":"resume","run_id":"r1"}') == ResumeFrame("r1", 0, None)
    assert parse_frame('{"type":"ping","client_message_id":5}') == PingFrame(5)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "invalid_json"),
        ("", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('"user_message"', "invalid_frame"),
        ("{}", "missing_field"),
        ('{"type": "launch_missiles"}', "unknown_type"),
        ('{"type": 42}', "unknown_type"),
        ('{"type": "user_message"}', "missing_field"),
        ('{"type": "user_message", "text": null}', "missing_field"),
        ('{"type": "user_message", "text": "x", "thread_id": 7}', "invalid_field"),
        ('{"type": "stop_run"}', "missing_field"),
        ('{"type": "stop_run", "run_id": ""}', "invalid_field"),
        ('{"type": "stop_run", "run_id": ["r1"]}', "invalid_field"),
        ('{"type": "resume"}', "missing_field"),
        ('{"type": "resume", "run_id": "r1", "after_seq": -1}', "invalid_field"),
        ('{"type": "resume", "run_id": "r1", "after_seq": "3"}', "invalid_field"),
        ('{"type": "resume", "run_id": "r1", "after_seq": true}', "invalid_field"),
        ('{"type": "resume", "run_id": "r1", "after_seq": 1.5}', "invalid_field"),
    ],
)
def test_bad_frames_name_what_is_wrong(text: str, code: str) -> None:
    with pytest.raises(FrameError) as raised:
        parse_frame(text)
    assert raised.value.code == code
    assert raised.value.message


def test_errors_carry_the_client_message_id_when_there_is_one() -> None:
    with pytest.raises(FrameError) as raised:
        parse_frame('{"type": "user_message", "client_message_id": "c9"}')
    assert raised.value.ref == "c9"
    with pytest.raises(FrameError) as unknown:
        parse_frame('{"type": "nope", "client_message_id": {"x": 1}}')
    assert unknown.value.ref is None
