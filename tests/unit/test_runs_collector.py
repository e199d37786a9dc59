"""Full garbage collections are held off while runs start, and always allowed again."""

import asyncio
import gc
from collections.abc import Iterator

import pytest

from apex.execution import collector


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(before[0], before[1], 7)
    try:
        yield gc.get_threshold()
    finally:
        collector.release()
        gc.set_threshold(*before)


async def test_a_run_starting_holds_full_collections_until_runs_stop_starting(
    monkeypatch: pytest.MonkeyPatch, thresholds: tuple[int, int, int]
) -> None:
    monkeypatch.setattr(collector, "QUIET_S", 0.05)
    collector.run_starting()
    young, middle, oldest = gc.get_threshold()
    assert (young, middle) == thresholds[:2]
    assert oldest > 1_000_000
    gc.collect(1)  # young collections go on
    for _ in range(200):
        await asyncio.sleep(0.01)
        if gc.get_threshold() == thresholds:
            break
    assert gc.get_threshold() == thresholds


async def test_a_hold_that_lasts_too_long_lets_a_full_collection_through(
    monkeypatch: pytest.MonkeyPatch, thresholds: tuple[int, int, int]
) -> None:
    monkeypatch.setattr(collector, "MAX_HOLD_S", 0.0)
    collector.run_starting()
    assert gc.get_threshold() != thresholds
    collector.run_starting()  # the hold began MAX_HOLD_S ago: released, and not taken again
    assert gc.get_threshold() == thresholds
    collector.run_starting()
    assert gc.get_threshold() == thresholds


async def test_release_restores_the_threshold_in_force_before_the_hold(
    thresholds: tuple[int, int, int],
) -> None:
    collector.run_starting()
    collector.run_starting()
    collector.release()
    assert gc.get_threshold() == thresholds
    collector.release()
    assert gc.get_threshold() == thresholds
