"""The answer store: served only while the tenant's rows are unchanged, bounded, per tenant."""

from __future__ import annotations

import threading

from apex.analytics.answers import AnswerStore


def counting(rows: list[tuple[int]]) -> tuple[list[int], object]:
    calls: list[int] = []

    def compute() -> list[tuple[int]]:
        calls.append(1)
        return list(rows)

    return calls, compute


def test_an_answer_is_computed_once_and_served_until_the_tenant_changes() -> None:
    store = AnswerStore()
    calls, compute = counting([(1,)])
    assert store.rows("a", "SELECT 1", compute) == [(1,)]
    assert store.rows("a", "SELECT 1", compute) == [(1,)]
    assert (len(calls), store.hits, store.misses) == (1, 1, 1)
    store.changed("a")
    assert store.rows("a", "SELECT 1", compute) == [(1,)]
    assert len(calls) == 2


def test_a_change_of_one_tenant_leaves_the_others_answers() -> None:
    store = AnswerStore()
    calls, compute = counting([(1,)])
    store.rows("a", "q", compute)
    store.rows("b", "q", compute)
    store.changed("a")
    store.rows("b", "q", compute)
    assert len(calls) == 2 and len(store) == 1


def test_the_same_statement_for_two_tenants_is_two_answers() -> None:
    store = AnswerStore()
    assert store.rows("a", "q", lambda: [("a",)]) == [("a",)]
    assert store.rows("b", "q", lambda: [("b",)]) == [("b",)]
    assert store.rows("a", "q", lambda: [("wrong",)]) == [("a",)]


def test_an_answer_computed_across_a_write_is_never_stored() -> None:
    store = AnswerStore()
    started, release = threading.Event(), threading.Event()

    def slow() -> list[tuple[str]]:
        started.set()
        release.wait(5)
        return [("before the write",)]

    reader = threading.Thread(target=store.rows, args=("a", "q", slow))
    reader.start()
    assert started.wait(5)
    store.changed("a")
    release.set()
    reader.join(5)
    assert store.rows("a", "q", lambda: [("after the write",)]) == [("after the write",)]


def test_callers_cannot_change_a_stored_answer() -> None:
    store = AnswerStore()
    first = store.rows("a", "q", lambda: [(1,)])
    first.append((2,))
    assert store.rows("a", "q", lambda: [(3,)]) == [(1,)]


def test_the_least_recently_used_answers_go_first() -> None:
    store = AnswerStore(capacity=2)
    store.rows("a", "q1", lambda: [(1,)])
    store.rows("a", "q2", lambda: [(2,)])
    store.rows("a", "q1", lambda: [(0,)])
    store.rows("a", "q3", lambda: [(3,)])
    assert len(store) == 2
    assert store.rows("a", "q1", lambda: [(0,)]) == [(1,)]
    assert store.rows("a", "q2", lambda: [(0,)]) == [(0,)]


def test_clear_forgets_everything() -> None:
    store = AnswerStore()
    store.rows("a", "q", lambda: [(1,)])
    store.clear()
    assert len(store) == 0
    assert store.rows("a", "q", lambda: [(2,)]) == [(2,)]


def test_the_platforms_own_calls_leave_the_answers_blind_to_them() -> None:
    store = AnswerStore()
    calls, compute = counting([(1,)])
    store.rows("a", "blind", compute, blind_to_own_calls=True)
    store.rows("a", "sees all", compute)
    store.changed("a", own_calls_only=True)
    store.rows("a", "blind", compute, blind_to_own_calls=True)
    assert len(calls) == 2
    store.rows("a", "sees all", compute)
    assert len(calls) == 3
    store.changed("a")
    store.rows("a", "blind", compute, blind_to_own_calls=True)
    assert len(calls) == 4


def test_an_answer_computed_across_an_own_calls_write_is_kept_only_when_blind() -> None:
    for blind in (True, False):
        store = AnswerStore()

        def compute(store: AnswerStore = store) -> list[tuple[int]]:
            store.changed("a", own_calls_only=True)
            return [(1,)]

        store.rows("a", "q", compute, blind_to_own_calls=blind)
        assert len(store) == (1 if blind else 0), blind
