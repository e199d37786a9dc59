"""What every reader yields: text columns named after the ledger fields, with source lines."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from apex.analytics.normalize import LINE, RejectedRow
from apex.errors import BadRequest

BATCH_ROWS = 100_000
FORMATS = ("csv", "jsonl", "otlp", "litellm")


class UnreadableFile(BadRequest):
    """The file as a whole cannot be read (empty, binary, no usable header, unknown format)."""

    default_code = "unreadable_file"


@dataclass(slots=True)
class RawBatch:
    """`table` holds `_line` plus text columns named after ledger fields (any subset)."""

    table: pa.Table
    bytes_read: int
    rejected: int = 0
    errors: list[RejectedRow] = field(default_factory=list)
    skipped: int = 0


def text_table(lines: list[int], columns: dict[str, list[str | None]]) -> pa.Table:
    """LedgerColumn lists to the Arrow shape the normalizer reads."""
    arrays: dict[str, pa.Array] = {LINE: pa.array(lines, pa.int64())}
    for name, values in columns.items():
        arrays[name] = pa.array(values, pa.string())
    return pa.table(arrays)
