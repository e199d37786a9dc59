"""The event envelope's wire form and the in-process bus: numbering, replay, bounds, fan-out."""

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from apex.realtime.bus import RunEndedError
from apex.realtime.events import EventDraft, EventType, RunEvent
from apex.realtime.memory import InProcessEventBus
from apex.timestamps import format_timestamp


def draft(
    run_id: str = "r1",
    user_id: str = "u1",
    *,
    final: bool = False,
    payload: dict[str, object] | None = None,
) -> EventDraft:
    body = payload or ({"final": True, "state": "cancelled"} if final else {"thought": "hm"})
    return EventDraft(
        type=EventType.AGENT_STOPPED if final else EventType.AGENT_THINKING,
        run_id=run_id,
        thread_id="t1",
        user_id=user_id,
        agent_name="supervisor",
        payload=body,
    )


def make_bus(**overrides: float) -> InProcessEventBus:
    options = {"replay_max": 1_000, "replay_ttl_s": 3_600.0, "retained_runs": 100}
    options.update(overrides)
    return InProcessEventBus(
        replay_max=int(options["replay_max"]),
        replay_ttl_s=options["replay_ttl_s"],
        retained_runs=int(options["retained_runs"]),
    )


def test_timestamps_are_utc_with_milliseconds() -> None:
    moment = datetime(2026, 11, 22, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(moment) == "2026-11-22T10:00:00.123Z"
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 1, 1))


def test_wire_form_is_the_protocol_envelope_in_order() -> None:
    event = draft(
        payload={
            "thought": 'naïve "quote"\nnewline',
            "n": Decimal("1.5"),
            "at": datetime(2026, 1, 1, tzinfo=UTC),
        }
    ).numbered(7)
    assert "\n" not in event.wire
    data = json.loads(event.wire)
    assert list(data) == [
        "type",
        "event_id",
        "seq",
        "run_id",
        "thread_id",
        "user_id",
        "agent_name",
        "timestamp",
        "payload",
    ]
    assert data["seq"] == 7 and data["type"] == "agent_thinking"
    assert data["payload"] == {
        "thought": 'naïve "quote"\nnewline',
        "n": 1.5,
        "at": "2026-01-01T00:00:00.000Z",
    }
    parsed = RunEvent.from_wire(event.wire)
    assert (parsed.seq, parsed.type, parsed.run_id, parsed.event_id) == (
        7,
        EventType.AGENT_THINKING,
        "r1",
        event.event_id,
    )
    assert parsed.to_dict() == data


async def test_seq_starts_at_one_per_run_and_is_gap_free() -> None:
    bus = make_bus()
    seqs = {"a": [], "b": []}
    for _ in range(5):
        for run_id in ("a", "b"):
            seqs[run_id].append((await bus.publish(draft(run_id))).seq)
    assert seqs == {"a": [1, 2, 3, 4, 5], "b": [1, 2, 3, 4, 5]}


async def test_replay_returns_events_after_a_seq() -> None:
    bus = make_bus()
    for _ in range(6):
        await bus.publish(draft())
    assert [e.seq for e in await bus.replay("r1", after_seq=4)] == [5, 6]
    assert [e.seq for e in await bus.replay("r1")] == [1, 2, 3, 4, 5, 6]
    assert await bus.replay("r1", after_seq=6) == []
    assert await bus.replay("unknown") == []


async def test_replay_log_is_bounded_per_run() -> None:
    bus = make_bus(replay_max=10)
    for _ in range(25):
        await bus.publish(draft())
    assert [e.seq for e in await bus.replay("r1")] == list(range(16, 26))


async def test_nothing_follows_the_final_event() -> None:
    bus = make_bus()
    await bus.publish(draft())
    final = await bus.publish(draft(final=True))
    assert final.final and final.seq == 2
    with pytest.raises(RunEndedError):
        await bus.publish(draft())
    assert [e.seq for e in await bus.replay("r1")] == [1, 2]


async def test_subscribers_receive_only_their_users_events() -> None:
    bus = make_bus()
    mine: list[RunEvent] = []
    theirs: list[RunEvent] = []
    await bus.subscribe("u1", mine.append)
    subscription = await bus.subscribe("u2", theirs.append)
    await bus.publish(draft("r1", "u1"))
    await bus.publish(draft("r2", "u2"))
    assert [(e.run_id, e.user_id) for e in mine] == [("r1", "u1")]
    assert [(e.run_id, e.user_id) for e in theirs] == [("r2", "u2")]
    await subscription.close()
    await subscription.close()
    await bus.publish(draft("r2", "u2"))
    assert len(theirs) == 1


async def test_a_failing_sink_does_not_starve_the_others() -> None:
    bus = make_bus()
    received: list[int] = []

    def broken(_event: RunEvent) -> None:
        raise RuntimeError("consumer bug")

    await bus.subscribe("u1", broken)
    await bus.subscribe("u1", lambda e: received.append(e.seq))
    await bus.publish(draft())
    assert received == [1]


async def test_ended_logs_are_kept_up_to_a_count_and_live_logs_always() -> None:
    bus = make_bus(retained_runs=3)
    await bus.publish(draft("live"))
    for index in range(5):
        await bus.publish(draft(f"ended{index}", final=True))
    assert bus.retained() == (1, 3)
    assert await bus.replay("ended0") == [] and await bus.replay("ended1") == []
    assert [e.seq for e in await bus.replay("ended4")] == [1]
    assert [e.seq for e in await bus.replay("live")] == [1]


async def test_ended_logs_expire_after_the_ttl() -> None:
    bus = make_bus(replay_ttl_s=0.05)
    await bus.publish(draft("old", final=True))
    await asyncio.sleep(0.1)
    await bus.publish(draft("new", final=True))
    assert await bus.replay("old") == []
    assert len(await bus.replay("new")) == 1


async def test_cancel_requests_reach_every_handler_and_workers_are_not_tracked() -> None:
    bus = make_bus()
    asked: list[str] = []
    bus.on_cancel(asked.append)
    await bus.request_cancel("r9")
    assert asked == ["r9"]
    await bus.heartbeat("w1")
    assert await bus.live_workers() is None
    assert bus.shared is False
