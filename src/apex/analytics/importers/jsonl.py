"""JSON Lines usage files: one object per line, keys matched like CSV headers (nested too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from apex.analytics.importers.base import RawBatch
from apex.analytics.importers.records import RecordBatcher, json_lines


def read_jsonl(stream: BinaryIO, *, batch_rows: int) -> Iterator[RawBatch]:
    batcher = RecordBatcher(batch_rows)
    position = 0
    for line, value, error, position in json_lines(stream):
        if error is not None:
            batcher.reject(line, error)
        elif not isinstance(value, dict):
            batcher.reject(line, f"expected a JSON object, got {type(value).__name__}")
        else:
            batcher.add_record(line, value)
        if batcher.full:
            yield batcher.take(position)
    yield batcher.take(position)
