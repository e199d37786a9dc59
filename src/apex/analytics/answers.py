"""Answers of ledger statements, kept until the tenant's rows change.

An exact percentile or a duplicate-prompt count over ten million rows costs hundreds of
milliseconds however it is written, and the same few statements are asked again and again: the
usage page, every chat run's data agent, each follow-up. A tenant's rows change only when one
of its uploads commits, its rows are erased or re-priced, so an answer stays right until then.

Each tenant has a generation number that every write bumps; an answer is stored under the
generation it was computed at, so a statement that was running while a write landed can never be
served afterwards. The platform's own metered model calls are written into the tenant's rows too,
once or twice per chat run; a statement that leaves those rows out (`blind_to_own_calls`, as
every analysis of a chat run does) is not changed by such a write, so its answer is kept: a
second counter, bumped only by writes of those calls, is what the other answers also check. The store is bounded (least recently used answers go first) and is only
correct for a ledger whose writes all pass through this process: the embedded DuckDB file,
which one process holds at a time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

Rows = list[tuple[Any, ...]]

DEFAULT_CAPACITY = 512


class AnswerStore:
    """Rows of statements per tenant, valid for the tenant's current generation."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._answers: OrderedDict[tuple[str, Hashable], tuple[int, int, bool, Rows]] = (
            OrderedDict()
        )
        self._generations: dict[str, int] = {}
        self._own_calls: dict[str, int] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._answers)

    def generation(self, tenant_id: str) -> int:
        with self._lock:
            return self._generations.get(tenant_id, 0)

    def _valid(self, tenant_id: str, generation: int, own_calls: int, blind: bool) -> bool:
        return self._generations.get(tenant_id, 0) == generation and (
            blind or self._own_calls.get(tenant_id, 0) == own_calls
        )

    def rows(
        self,
        tenant_id: str,
        statement: Hashable,
        compute: Callable[[], Rows],
        *,
        blind_to_own_calls: bool = False,
    ) -> Rows:
        """The statement's rows: stored ones when the tenant has not changed since, else
        computed now (outside the lock, so reads of other statements proceed) and stored."""
        key = (tenant_id, statement)
        with self._lock:
            generation = self._generations.get(tenant_id, 0)
            own_calls = self._own_calls.get(tenant_id, 0)
            found = self._answers.get(key)
            if found is not None and self._valid(tenant_id, *found[:3]):
                self._answers.move_to_end(key)
                self.hits += 1
                return list(found[3])
            self.misses += 1
        rows = compute()
        with self._lock:
            if self._valid(tenant_id, generation, own_calls, blind_to_own_calls):
                self._answers[key] = (generation, own_calls, blind_to_own_calls, list(rows))
                self._answers.move_to_end(key)
                while len(self._answers) > self.capacity:
                    self._answers.popitem(last=False)
        return rows

    def changed(self, tenant_id: str, *, own_calls_only: bool = False) -> None:
        """The tenant's rows changed: none of its stored answers may be served again, except,
        when only the platform's own calls were added, those of statements blind to them."""
        with self._lock:
            if own_calls_only:
                self._own_calls[tenant_id] = self._own_calls.get(tenant_id, 0) + 1
                stale = [
                    key
                    for key, found in self._answers.items()
                    if key[0] == tenant_id and not found[2]
                ]
            else:
                self._generations[tenant_id] = self._generations.get(tenant_id, 0) + 1
                stale = [key for key in self._answers if key[0] == tenant_id]
            for key in stale:
                del self._answers[key]

    def clear(self) -> None:
        """Forget every answer (the benchmark measures statements uncached this way)."""
        with self._lock:
            self._answers.clear()
            for tenant_id in self._generations:
                self._generations[tenant_id] += 1
