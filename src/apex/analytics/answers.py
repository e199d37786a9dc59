"""Answers of ledger statements, kept until the tenant's rows change.

An exact percentile or a duplicate-prompt count over ten million rows costs hundreds of
milliseconds however it is written, and the same few statements are asked again and again: the
usage page, every chat run's data agent, each follow-up. A tenant's rows change only when one
of its uploads commits, its rows are erased or re-priced, so an answer stays right until then.

Each tenant has a generation number that every write bumps; an answer is stored under the
generation it was computed at, so a statement that was running while a write landed can never be
served afterwards. The store is bounded (least recently used answers go first) and is only
correct for a ledger whose writes all pass through this process: the embedded DuckDB file,
which one process holds at a time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

Rows = list[tuple[Any, ...]]

DEFAULT_CAPACITY = 512


class AnswerStore:
    """Rows of statements per tenant, valid for the tenant's current generation."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._answers: OrderedDict[tuple[str, str], tuple[int, Rows]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._answers)

    def generation(self, tenant_id: str) -> int:
        with self._lock:
            return self._generations.get(tenant_id, 0)

    def rows(self, tenant_id: str, statement: str, compute: Callable[[], Rows]) -> Rows:
        """The statement's rows: stored ones when the tenant has not changed since, else
        computed now (outside the lock, so reads of other statements proceed) and stored."""
        key = (tenant_id, statement)
        with self._lock:
            generation = self._generations.get(tenant_id, 0)
            found = self._answers.get(key)
            if found is not None and found[0] == generation:
                self._answers.move_to_end(key)
                self.hits += 1
                return list(found[1])
            self.misses += 1
        rows = compute()
        with self._lock:
            if self._generations.get(tenant_id, 0) == generation:
                self._answers[key] = (generation, list(rows))
                self._answers.move_to_end(key)
                while len(self._answers) > self.capacity:
                    self._answers.popitem(last=False)
        return rows

    def changed(self, tenant_id: str) -> None:
        """The tenant's rows changed: none of its stored answers may be served again."""
        with self._lock:
            self._generations[tenant_id] = self._generations.get(tenant_id, 0) + 1
            for key in [key for key in self._answers if key[0] == tenant_id]:
                del self._answers[key]

    def clear(self) -> None:
        """Forget every answer (the benchmark measures statements uncached this way)."""
        with self._lock:
            self._answers.clear()
            for tenant_id in self._generations:
                self._generations[tenant_id] += 1
