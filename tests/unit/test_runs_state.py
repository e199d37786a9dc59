"""The one run state machine and the immutable execution context."""

import dataclasses
import itertools

import pytest

from apex.execution.context import InvalidContext, UserExecutionContext
from apex.execution.state import (
    LIVE_STATES,
    TERMINAL_STATES,
    IllegalRunTransition,
    RunState,
    can_transition,
    require_transition,
)

S = RunState
FORWARD = [
    (S.PENDING, S.STARTING),
    (S.STARTING, S.RUNNING),
    (S.RUNNING, S.COMPLETING),
    (S.COMPLETING, S.COMPLETED),
]
ENDINGS = [S.FAILED, S.TIMEOUT, S.CANCELLED]


def test_the_happy_path_is_legal_step_by_step() -> None:
    for current, target in FORWARD:
        require_transition(current, target)


@pytest.mark.parametrize("current", sorted(LIVE_STATES))
@pytest.mark.parametrize("target", ENDINGS)
def test_any_live_state_may_fail_time_out_or_be_cancelled(
    current: RunState, target: RunState
) -> None:
    assert can_transition(current, target)


@pytest.mark.parametrize("current", sorted(TERMINAL_STATES))
@pytest.mark.parametrize("target", list(RunState))
def test_terminal_states_never_change(current: RunState, target: RunState) -> None:
    with pytest.raises(IllegalRunTransition) as raised:
        require_transition(current, target)
    assert raised.value.code == "illegal_run_transition"
    assert raised.value.details == {"from": current.value, "to": target.value}


def test_exactly_the_documented_transitions_are_legal() -> None:
    legal = {(a, b) for a, b in itertools.product(RunState, RunState) if can_transition(a, b)}
    expected = set(FORWARD) | {(live, end) for live in LIVE_STATES for end in ENDINGS}
    assert legal == expected
    assert (S.PENDING, S.RUNNING) not in legal
    assert (S.RUNNING, S.STARTING) not in legal
    assert (S.RUNNING, S.COMPLETED) not in legal


def test_states_split_into_live_and_terminal() -> None:
    assert LIVE_STATES | TERMINAL_STATES == set(RunState)
    assert all(state.terminal for state in TERMINAL_STATES)
    assert all(state.live for state in LIVE_STATES)


def make_context(**overrides: str) -> UserExecutionContext:
    values = {"user_id": "u1", "thread_id": "t1", "run_id": "r1", "request_id": "q1"}
    values.update(overrides)
    return UserExecutionContext(**values)


def test_context_is_immutable() -> None:
    ctx = make_context()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.user_id = "someone-else"  # type: ignore[misc]


@pytest.mark.parametrize("field", ["user_id", "thread_id", "run_id", "request_id"])
@pytest.mark.parametrize("bad", ["", " ", "a" * 65, "a/b", "x y", "é"])
def test_context_validates_ids_at_construction(field: str, bad: str) -> None:
    with pytest.raises(InvalidContext, match=field):
        make_context(**{field: bad})


def test_context_refuses_non_strings() -> None:
    with pytest.raises(InvalidContext):
        UserExecutionContext(
            user_id=None,
            thread_id="t",
            run_id="r",  # type: ignore[arg-type]
            request_id="q",
        )


def test_child_context_keeps_user_thread_run_and_request() -> None:
    parent = make_context()
    child = parent.child("data")
    assert (child.user_id, child.thread_id, child.run_id, child.request_id) == (
        "u1",
        "t1",
        "r1",
        "q1",
    )
    assert (child.agent_name, child.parent_agent) == ("data", "supervisor")
    grandchild = child.child("data_helper")
    assert grandchild.parent_agent == "data" and grandchild.run_id == "r1"
    assert parent.agent_name == "supervisor"


@pytest.mark.parametrize("bad", ["", "Data", "1x", "a-b", "x" * 65])
def test_child_agent_names_are_identifiers(bad: str) -> None:
    with pytest.raises(InvalidContext):
        make_context().child(bad)
