"""The memory gate: statements side by side, the retry of one that ran out of memory alone."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import REGISTRY

from apex.analytics.memory_gate import MemoryGate


class OutOfMemory(Exception):
    pass


def retried_alone() -> float:
    """What GET /metrics reports as apex_ledger_statements_retried_alone_total."""
    return REGISTRY.get_sample_value("apex_ledger_statements_retried_alone_total") or 0.0


def failing_times(times: int, answer: str = "answer"):  # type: ignore[no-untyped-def]
    calls: list[int] = []

    def statement() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise OutOfMemory
        return answer

    return statement, calls


def test_a_statement_that_ran_out_of_memory_runs_once_more() -> None:
    gate = MemoryGate(OutOfMemory)
    statement, calls = failing_times(1)
    counted = retried_alone()
    assert gate.run(statement) == "answer"
    assert (len(calls), gate.retried) == (2, 1)
    assert retried_alone() == counted + 1


def test_a_statement_that_does_not_fit_alone_either_fails() -> None:
    gate = MemoryGate(OutOfMemory)
    statement, calls = failing_times(2)
    with pytest.raises(OutOfMemory):
        gate.run(statement)
    assert len(calls) == 2


def test_other_failures_are_not_retried() -> None:
    gate = MemoryGate(OutOfMemory)
    calls: list[int] = []

    def statement() -> None:
        calls.append(1)
        raise ValueError("bad statement")

    with pytest.raises(ValueError):
        gate.run(statement)
    assert len(calls) == 1 and gate.retried == 0


def test_the_retry_waits_for_statements_in_flight_and_later_ones_wait_for_it() -> None:
    gate = MemoryGate(OutOfMemory)
    events: list[str] = []
    release_slow = threading.Event()
    slow_started = threading.Event()

    def slow() -> None:
        events.append("slow start")
        slow_started.set()
        release_slow.wait(10)
        events.append("slow end")

    attempts: list[int] = []

    def hungry() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            events.append("hungry out of memory")
            raise OutOfMemory
        events.append("hungry alone")

    def later() -> None:
        events.append("later")

    threads = [threading.Thread(target=gate.run, args=(slow,))]
    threads[0].start()
    assert slow_started.wait(10)
    threads.append(threading.Thread(target=gate.run, args=(hungry,)))
    threads[1].start()
    deadline = time.monotonic() + 10
    while gate._waiting_alone == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    threads.append(threading.Thread(target=gate.run, args=(later,)))
    threads[2].start()
    time.sleep(0.1)
    assert events == ["slow start", "hungry out of memory"]
    release_slow.set()
    for thread in threads:
        thread.join(10)
    assert events == ["slow start", "hungry out of memory", "slow end", "hungry alone", "later"]
