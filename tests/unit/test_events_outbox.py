"""The outbox of events waiting for Redis, and the stored final event a resume falls back to."""

from apex.realtime.delivery import OrderedFeed
from apex.realtime.events import EventDraft, EventType, RunEvent
from apex.realtime.memory import InProcessEventBus
from apex.realtime.outbox import Outbox


def numbered(run_id: str, seq: int, *, final: bool = False, user_id: str = "u") -> RunEvent:
    payload: dict[str, object] = {"final": True, "state": "failed"} if final else {"thought": "t"}
    return EventDraft(
        type=EventType.AGENT_THINKING,
        run_id=run_id,
        thread_id="t",
        user_id=user_id,
        agent_name="supervisor",
        payload=payload,
    ).numbered(seq)


def test_the_outbox_keeps_order_and_tells_which_runs_wait() -> None:
    outbox = Outbox(capacity=10)
    for seq in (1, 2):
        outbox.put(numbered("a", seq))
    outbox.put(numbered("b", 7))
    assert outbox.holds("a") and outbox.holds("b") and not outbox.holds("c")
    assert (outbox.last_seq("a"), outbox.last_seq("b"), outbox.last_seq("c")) == (2, 7, 0)
    order = []
    while (head := outbox.head()) is not None:
        order.append((head.run_id, head.seq))
        outbox.pop()
    assert order == [("a", 1), ("a", 2), ("b", 7)]
    assert not outbox.holds("a") and len(outbox) == 0


def test_a_full_outbox_drops_the_oldest_event_that_is_not_final() -> None:
    outbox = Outbox(capacity=3)
    outbox.put(numbered("a", 1, final=True))
    for seq in (1, 2, 3):
        outbox.put(numbered("b", seq))
    kept = []
    while (head := outbox.head()) is not None:
        kept.append((head.run_id, head.seq))
        outbox.pop()
    assert kept == [("a", 1), ("b", 2), ("b", 3)]


async def test_resume_adds_the_stored_final_only_when_the_log_lacks_it() -> None:
    bus = InProcessEventBus(replay_max=100, replay_ttl_s=60, retained_runs=10)
    feed = OrderedFeed(bus, "u")
    stored = numbered("gone", 4, final=True).wire
    assert [e.seq for e in await feed.resume("gone", 3, stored)] == [4]
    assert await feed.resume("gone", 4, stored) == [], "the client already has it"
    assert await OrderedFeed(bus, "someone-else").resume("gone", 0, stored) == []

    draft = EventDraft(
        type=EventType.AGENT_THINKING,
        run_id="kept",
        thread_id="t",
        user_id="u",
        agent_name="supervisor",
        payload={"thought": "t"},
    )
    await bus.publish(draft)
    final = await bus.publish(
        EventDraft(
            type=EventType.AGENT_ERROR,
            run_id="kept",
            thread_id="t",
            user_id="u",
            agent_name="supervisor",
            payload={"final": True, "state": "failed"},
        )
    )
    replayed = await OrderedFeed(bus, "u").resume("kept", 0, final.wire)
    assert [e.seq for e in replayed] == [1, 2], "the log's own final is not doubled"
