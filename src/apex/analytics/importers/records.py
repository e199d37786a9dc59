"""JSON-shaped sources: records (dicts) to text columns, in batches, with their source lines.

JSON Lines, LiteLLM exports and OTLP spans all end up as one dict per call; this module maps
their keys to ledger fields (through the same aliases as CSV headers) and builds the batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from apex.analytics.importers.base import TOO_DEEP, RawBatch, text_table
from apex.analytics.importers.fields import input_excludes_cache, match_fields
from apex.analytics.normalize import RejectedRow
from apex.analytics.schema import INPUT_EXCLUDES_CACHE, RAW_FIELDS

MAX_LINE_BYTES = 8 * 1_048_576
MAX_BATCH_ERRORS = 50
_MAX_DEPTH = 4
_BOM = b"\xef\xbb\xbf"


def flatten(
    record: dict[str, Any], prefix: str = "", depth: int = 0, into: dict[str, Any] | None = None
) -> dict[str, Any]:
    """{"usage": {"prompt_tokens": 3}} -> {"usage.prompt_tokens": 3}; lists stay whole."""
    if into is None and not any(type(value) is dict for value in record.values()):
        return record
    flat: dict[str, Any] = {} if into is None else into
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < _MAX_DEPTH:
            flatten(value, f"{name}.", depth + 1, flat)
        else:
            flat[name] = value
    return flat


def as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, separators=(",", ":"))


class RecordBatcher:
    """Collects mapped records and cuts them into RawBatches of at most `batch_rows`."""

    def __init__(self, batch_rows: int) -> None:
        self._batch_rows = batch_rows
        self._lines: list[int] = []
        self._rows: list[Mapping[str, str | None]] = []
        self._mappings: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}
        self.rejected = 0
        self.skipped = 0
        self.errors: list[RejectedRow] = []

    def reject(self, line: int, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_BATCH_ERRORS:
            self.errors.append(RejectedRow(line, message))

    def add_row(self, line: int, row: Mapping[str, str | None]) -> None:
        """A record already mapped to ledger fields, as text."""
        self._lines.append(line)
        self._rows.append(row)

    def add_record(self, line: int, record: dict[str, Any]) -> None:
        """A record in the source's own key names: mapped through the field aliases."""
        flat = flatten(record)
        keys = tuple(flat)
        mapping = self._mappings.get(keys)
        if mapping is None:
            found = match_fields(keys)
            mapping = tuple(found.items())
            if input_excludes_cache(found):
                mapping += ((INPUT_EXCLUDES_CACHE, ""),)
            self._mappings[keys] = mapping
        row: dict[str, str | None] = {}
        for field, source in mapping:
            if field == INPUT_EXCLUDES_CACHE:
                row[field] = "true"
                continue
            value = flat[source]
            if type(value) is str:
                row[field] = value
            elif value is not None:
                try:
                    row[field] = as_text(value)
                except RecursionError:
                    self.reject(line, TOO_DEEP)
                    return
        self._lines.append(line)
        self._rows.append(row)

    @property
    def full(self) -> bool:
        return len(self._lines) >= self._batch_rows

    def take(self, bytes_read: int) -> RawBatch:
        present = {name for row in self._rows for name in row}
        columns = {
            name: [row.get(name) for row in self._rows] for name in RAW_FIELDS if name in present
        }
        batch = RawBatch(
            text_table(self._lines, columns), bytes_read, self.rejected, self.errors, self.skipped
        )
        self._lines, self._rows = [], []
        self.rejected, self.skipped, self.errors = 0, 0, []
        return batch


class LineSource(Protocol):
    """What `json_lines` reads from: a binary file, or anything with its `readline`."""

    def readline(self, limit: int = -1, /) -> bytes: ...


def json_lines(stream: LineSource) -> Iterator[tuple[int, Any, str | None, int]]:
    """(line, parsed value or None, error or None, bytes read so far) for each non-blank line.

    A line longer than MAX_LINE_BYTES is reported and skipped without holding it in memory.
    """
    position = 0
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        position += len(raw)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(MAX_LINE_BYTES + 1)
                position += len(raw)
            yield number, None, f"line longer than {MAX_LINE_BYTES // 1_048_576} MiB", position
            continue
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None, "not valid UTF-8 text", position
            continue
        try:
            yield number, json.loads(text), None, position
        except json.JSONDecodeError as exc:
            yield number, None, f"invalid JSON: {exc.msg} (column {exc.colno})", position
        except RecursionError:
            yield number, None, TOO_DEEP, position
