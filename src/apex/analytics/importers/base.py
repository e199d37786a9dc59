"""What every reader yields: text columns named after the ledger fields, with source lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from apex.analytics.normalize import LINE, RejectedRow
from apex.errors import BadRequest

BATCH_ROWS = 100_000
FORMATS = ("csv", "jsonl", "otlp", "litellm")


class UnreadableFile(BadRequest):
    """The file as a whole cannot be read (empty, binary, no usable header, unknown format)."""

    default_code = "unreadable_file"


TOO_DEEP = "JSON nested too deeply to be a usage record"


def too_deep() -> UnreadableFile:
    """What a JSON document nested deeper than the parser goes (a hostile file) is refused as."""
    return UnreadableFile(f"The file is not a usage export: {TOO_DEEP}.", code="json_too_deep")


@dataclass(slots=True)
class RawBatch:
    """`table` holds `_line` plus text columns named after ledger fields (any subset)."""

    table: pa.Table
    bytes_read: int
    rejected: int = 0
    errors: list[RejectedRow] = field(default_factory=list)
    skipped: int = 0


def joined(batches: Iterable[RawBatch], rows: int) -> Iterator[RawBatch]:
    """Batches of at least `rows` rows (but the last), joined without copying: the normalizer
    pays about 20–30 ms of planning per batch, while readers keep their byte chunks small to bound
    their own memory (a CSV or JSON Lines chunk holds 10k to 100k rows)."""
    tables: list[pa.Table] = []
    count = rejected = skipped = 0
    errors: list[RejectedRow] = []
    bytes_read = 0
    for batch in batches:
        if batch.table.num_rows:
            tables.append(batch.table)
            count += batch.table.num_rows
        rejected += batch.rejected
        skipped += batch.skipped
        errors.extend(batch.errors)
        bytes_read = batch.bytes_read
        if count >= rows:
            yield RawBatch(_concat(tables), bytes_read, rejected, errors, skipped)
            tables, count, rejected, skipped, errors = [], 0, 0, 0, []
    if tables or rejected or skipped or errors:
        yield RawBatch(_concat(tables), bytes_read, rejected, errors, skipped)


def _concat(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return pa.table({LINE: pa.array([], pa.int64())})
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")


def text_table(lines: list[int], columns: dict[str, list[str | None]]) -> pa.Table:
    """LedgerColumn lists to the Arrow shape the normalizer reads."""
    arrays: dict[str, pa.Array] = {LINE: pa.array(lines, pa.int64())}
    for name, values in columns.items():
        arrays[name] = pa.array(values, pa.string())
    return pa.table(arrays)
