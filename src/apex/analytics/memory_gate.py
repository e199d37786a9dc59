"""Statements that share one engine's memory limit: side by side first, alone if that fails.

The embedded ledger gives DuckDB a fixed memory limit, and an exact percentile or a large
group-by over millions of rows holds a good part of it. One such read fits; the dozen a chat
run asks for at once, or the first reads of several users, do not, and DuckDB then fails the
statements that ask for memory last. Running everything one at a time would make a cheap read
wait behind every slow one, so statements run side by side as usual, and one that runs out of
memory runs again with the engine to itself: it waits for the statements in flight to end, and
new ones wait for it. A statement that does not fit even alone fails as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from prometheus_client import Counter

from apex.config.logging import get_logger

ResultT = TypeVar("ResultT")
RETRIED_ALONE = Counter(
    "apex_ledger_statements_retried_alone_total",
    "Ledger statements that ran out of memory beside others and ran again alone",
)
log = get_logger(__name__)


class MemoryGate:
    """Shared passage for statements, exclusive passage for the retry of one that ran out."""

    def __init__(self, out_of_memory: type[BaseException]) -> None:
        self._out_of_memory = out_of_memory
        self._changed = threading.Condition()
        self._running = 0
        self._waiting_alone = 0
        self._alone = False
        self.retried = 0

    @contextmanager
    def _shared(self) -> Iterator[None]:
        with self._changed:
            # a statement waiting to run alone goes first, or a stream of reads could starve it
            self._changed.wait_for(lambda: not self._alone and not self._waiting_alone)
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self._changed:
            self._waiting_alone += 1
            self._changed.wait_for(lambda: not self._alone and self._running == 0)
            self._waiting_alone -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._changed:
                self._alone = False
                self._changed.notify_all()

    def run(self, statement: Callable[[], ResultT]) -> ResultT:
        """Run `statement`; if it runs out of memory, run it once more alone. It must be safe
        to run twice: a failed DuckDB statement has changed nothing."""
        try:
            with self._shared():
                return statement()
        except self._out_of_memory:
            pass
        log.info("ledger_statement_retried_alone")
        with self._exclusive():
            self.retried += 1
            RETRIED_ALONE.inc()
            return statement()
