"""Reading runs ahead of normalizing in a helper thread, but never by more than it may."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from apex.analytics.ingest import _prefetch


def _counted(total: int, produced: list[int]) -> Iterator[int]:
    for index in range(total):
        produced.append(index)
        yield index


@pytest.mark.parametrize("depth", [1, 2])
def test_the_reader_holds_at_most_depth_items_besides_the_one_in_hand(depth: int) -> None:
    produced: list[int] = []
    items = _prefetch(_counted(10, produced), depth=depth)
    seen = [next(items)]
    for _ in range(3):
        time.sleep(0.2)
        assert len(produced) <= len(seen) + depth
        seen.append(next(items))
    seen.extend(items)
    assert seen == list(range(10))


def test_an_error_while_reading_reaches_the_caller_after_the_good_items() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("line 3: broken")

    items = _prefetch(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="broken"):
        next(items)


def test_stopping_early_ends_the_reader_thread() -> None:
    items = _prefetch(_counted(1_000, []))
    assert next(items) == 0
    items.close()
    assert not any(
        thread.name == "apex-import-reader" and thread.is_alive()
        for thread in threading.enumerate()
    )
