"""A mergeable latency sketch: counts of values per logarithmic bucket.

An exact percentile needs every value of its scope sorted; over ten million rows that costs
most of a second however it is written. Counting values per bucket whose bounds grow by a
factor GAMMA instead gives counts that add up across hours and groups (a plain SUM in SQL), and
any percentile read back from them is within RELATIVE_ERROR of the exact one: a value v in
(GAMMA^(k-1), GAMMA^k] is stood for by 2·GAMMA^k / (1 + GAMMA), at most (GAMMA-1)/(GAMMA+1)
away from v relative to it, and the linear interpolation between two ranks (what
`quantile_cont` does) of values each that close is that close too.

Keys keep the order of the values: positive values take k itself (about ±36,000 over the whole
double range), zero takes ZERO_KEY and a negative value -v takes NEGATIVE_BASE - k, so sorting
the keys sorts the values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

GAMMA = 1.02
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)  # 0.0099: within the 1% the ledger promises
ZERO_KEY = -100_000
NEGATIVE_BASE = -200_000
_LOG_GAMMA = math.log(GAMMA)


def bucket_sql(column: str) -> str:
    """The bucket key of `column` in SQL (DuckDB), NULL for a NULL value."""
    steps = f"CAST(ceil(ln(abs({column})) / {_LOG_GAMMA!r}) AS INTEGER)"
    return (
        f"CASE WHEN {column} > 0 THEN {steps} WHEN {column} = 0 THEN {ZERO_KEY} "
        f"WHEN {column} < 0 THEN {NEGATIVE_BASE} - {steps} END"
    )


def bucket_value(key: int) -> float:
    """The value a bucket stands for (exact for zero)."""
    if key == ZERO_KEY:
        return 0.0
    if key > ZERO_KEY:
        return 2 * GAMMA**key / (1 + GAMMA)
    return -2 * GAMMA ** (NEGATIVE_BASE - key) / (1 + GAMMA)


def quantiles(counts: Iterable[tuple[int, int]], levels: Sequence[float]) -> list[float] | None:
    """`quantile_cont` at each level over the values the (bucket key, count) pairs counted, or
    None when they counted none. Pairs may repeat a key (they are merged)."""
    merged: dict[int, int] = {}
    for key, count in counts:
        merged[key] = merged.get(key, 0) + int(count)
    ordered = sorted((key, count) for key, count in merged.items() if count > 0)
    total = sum(count for _key, count in ordered)
    if not total:
        return None

    def at_rank(rank: int) -> float:
        seen = 0
        for key, count in ordered:
            seen += count
            if rank < seen:
                return bucket_value(key)
        return bucket_value(ordered[-1][0])

    result = []
    for level in levels:
        position = (total - 1) * level
        low = math.floor(position)
        low_value = at_rank(low)
        high_value = at_rank(math.ceil(position))
        result.append(low_value + (position - low) * (high_value - low_value))
    return result
