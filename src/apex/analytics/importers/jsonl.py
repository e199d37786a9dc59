"""JSON Lines usage files: one object per line, keys matched like CSV headers (nested too).

Lines are cut out of large chunks with numpy and parsed by DuckDB's JSON functions: one pass
merges the keys of every object in the chunk (so a key that appears in one row only is still
found) and one extracts all fields. Each pass parses every line again, so a chunk whose lines all
begin with `{` (or are empty) has only these two: a line that begins so is an object if it is
JSON at all, and the key pass checks that. Any other chunk first has its lines' JSON types told
in a pass of its own, and the few that are not objects are reported.
A chunk that is not valid UTF-8 falls back to parsing line by line in Python, so one bad line
costs only that line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from apex.analytics.importers.base import RawBatch
from apex.analytics.importers.fields import input_excludes_cache, match_fields
from apex.analytics.importers.records import MAX_LINE_BYTES, RecordBatcher, json_lines
from apex.analytics.normalize import LINE, RejectedRow
from apex.analytics.schema import INPUT_EXCLUDES_CACHE

CHUNK_BYTES = 16 * 1_048_576
MAX_ERRORS = 50
_MAX_DEPTH = 4
_BOM = b"\xef\xbb\xbf"


def _json_path(path: tuple[str, ...]) -> str:
    return "$" + "".join('."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"' for key in path)


_KIND = "CASE WHEN json_valid(line) THEN json_type(line) END"
# the lines that are not a JSON object (usually none): only they leave DuckDB, so the lines
# that are objects pass through this check without being copied
_NOT_OBJECT = "CASE WHEN json_valid(line) THEN json_type(line) <> 'OBJECT' ELSE true END"
# DuckDB's json_type names, said the way JSON does
_JSON_KINDS = {
    "VARCHAR": "string",
    "UBIGINT": "number",
    "BIGINT": "number",
    "DOUBLE": "number",
    "BOOLEAN": "boolean",
    "NULL": "null",
    "ARRAY": "array",
}


class _Chunks:
    """Whole lines of the file, a chunk at a time, with the number of the first line."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.position = 0
        self.oversized: list[int] = []

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        line = 1
        carry = b""
        first = True
        while True:
            data = self._stream.read(CHUNK_BYTES)
            self.position += len(data)
            if first and data.startswith(_BOM):
                data = data[len(_BOM) :]
            first = False
            buffer = carry + data
            if not data:
                if buffer:
                    yield line, buffer
                return
            cut = buffer.rfind(b"\n")
            if cut < 0:
                if len(buffer) > MAX_LINE_BYTES:
                    self.oversized.append(line)
                    buffer = self._skip_line()
                    line += 1
                carry = buffer
                continue
            yield line, buffer[:cut]
            line += buffer.count(b"\n", 0, cut) + 1
            carry = buffer[cut + 1 :]

    def _skip_line(self) -> bytes:
        while True:
            data = self._stream.read(CHUNK_BYTES)
            self.position += len(data)
            if not data:
                return b""
            cut = data.find(b"\n")
            if cut >= 0:
                return data[cut + 1 :]


class JsonLinesReader:
    def __init__(self, stream: BinaryIO, *, batch_rows: int) -> None:
        self._chunks = _Chunks(stream)
        self._batch_rows = batch_rows
        self._db = duckdb.connect(config={"threads": 2, "memory_limit": "160MB"})
        self._is_object: dict[tuple[str, ...], bool] = {}

    def batches(self) -> Iterator[RawBatch]:
        try:
            for first_line, data in self._chunks:
                errors = [
                    RejectedRow(line, f"line longer than {MAX_LINE_BYTES // 1_048_576} MiB")
                    for line in self._chunks.oversized
                ]
                self._chunks.oversized = []
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    yield from self._slowly(first_line, data, errors)
                    continue
                yield from self._parse(first_line, data, errors)
        finally:
            self._db.close()

    def _lines(self, first_line: int, data: bytes) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        """One Arrow string per line, pointing into `data` (each keeps its newline); which
        lines are empty, and which begin with `{` (an object, if they are valid JSON at all)."""
        view = np.frombuffer(data, dtype=np.uint8)
        starts = np.concatenate(([0], np.flatnonzero(view == ord("\n")) + 1))
        if starts[-1] == len(data):
            starts = starts[:-1]
        offsets = np.append(starts, len(data)).astype(np.int32)
        text = pa.StringArray.from_buffers(
            starts.size, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)
        )
        numbers = pa.array(np.arange(first_line, first_line + starts.size), pa.int64())
        first = view[starts]
        return pa.table({LINE: numbers, "line": text}), first == ord("\n"), first == ord("{")

    def _parse(self, first_line: int, data: bytes, errors: list[RejectedRow]) -> Iterator[RawBatch]:
        """Each line is parsed twice (its keys, then its values) when every line that is not
        empty begins with `{` and is valid JSON, which DuckDB checks as it reads the keys.
        Otherwise, or when that check fails, the chunk is read again the careful way: first
        which lines are not objects, to report them, then the others."""
        lines, empty, braced = self._lines(first_line, data)
        table = None
        bad: list[RejectedRow] = []
        if bool(np.all(empty | braced)):
            try:
                table = self._values(lines.filter(pa.array(~empty)) if empty.any() else lines)
            except duckdb.InvalidInputException:
                table = None
        if table is None:
            self._db.register("lines", lines)
            try:
                others = self._db.sql(
                    f"SELECT _line, line, {_KIND} AS kind FROM lines WHERE {_NOT_OBJECT}"
                ).to_arrow_table()
            finally:
                self._db.unregister("lines")
            bad = _not_objects(others.sort_by(LINE))
            if others.num_rows:
                lines = lines.filter(pc.invert(pc.is_in(lines[LINE], others[LINE])))
            table = self._values(lines)
        rejected = len(errors) + len(bad)
        errors = sorted([*errors, *bad[:MAX_ERRORS]], key=lambda error: error.line)
        for offset in range(0, max(table.num_rows, 1), self._batch_rows):
            yield RawBatch(
                table.slice(offset, self._batch_rows), self._chunks.position, rejected, errors
            )
            rejected, errors = 0, []

    def _values(self, lines: pa.Table) -> pa.Table:
        """The mapped fields of `lines`, every one a JSON object, as text columns."""
        self._db.register("lines", lines)
        try:
            paths = self._key_paths()
            by_name = {".".join(path): path for path in paths}
            mapping = match_fields(by_name)
            json_paths = [_json_path(by_name[source]) for source in mapping.values()]
            values = ", ".join(
                f"v[{index}] AS {field}" for index, field in enumerate(mapping, start=1)
            )
            if input_excludes_cache(mapping):
                values += f", 'true' AS {INPUT_EXCLUDES_CACHE}"
            if not mapping:
                return self._db.sql("SELECT _line FROM lines").to_arrow_table()
            # the key paths come from the file: DuckDB binds them, they never enter the text
            return self._db.sql(
                f"SELECT _line, {values} FROM (SELECT _line, "
                "json_extract_string(line, $paths) AS v FROM lines)",
                params={"paths": json_paths},
            ).to_arrow_table()
        finally:
            self._db.unregister("lines")

    def _key_paths(self) -> list[tuple[str, ...]]:
        """Every key path in the chunk's objects, nested objects walked level by level.

        A key is walked into only when it holds an object in every row of the first chunk it
        appears in; otherwise its value is taken whole (and a stray object is reported by the
        normalizer as a wrong type, never dropped)."""
        leaves: list[tuple[str, ...]] = []
        level: list[tuple[str, ...]] = [()]
        while level:
            keys: list[tuple[str, ...]] = []
            for parent in level:
                nested = "WHERE json_type(line, $path) = 'OBJECT' " if parent else ""
                found = self._db.execute(
                    "SELECT DISTINCT unnest(json_keys(line, $path)) AS key FROM lines "
                    f"{nested}ORDER BY key",
                    {"path": _json_path(parent)},
                ).fetchall()
                keys.extend((*parent, str(key)) for (key,) in found)
            if not keys:
                break
            unknown = [path for path in keys if path not in self._is_object]
            if unknown:
                flags = ", ".join(
                    f"coalesce(bool_and(t[{i}] = 'OBJECT'), false)"
                    for i in range(1, len(unknown) + 1)
                )
                objects = self._db.execute(
                    f"SELECT {flags} FROM (SELECT json_type(line, $paths) AS t FROM lines)",
                    {"paths": [_json_path(path) for path in unknown]},
                ).fetchall()[0]
                self._is_object.update(zip(unknown, objects, strict=True))
            level = []
            for path in keys:
                if self._is_object[path] and len(path) < _MAX_DEPTH:
                    level.append(path)
                else:
                    leaves.append(path)
        return leaves

    def _slowly(
        self, first_line: int, data: bytes, errors: list[RejectedRow]
    ) -> Iterator[RawBatch]:
        batcher = RecordBatcher(self._batch_rows)
        for error in errors:
            batcher.reject(error.line, error.message)
        for line, value, problem, _ in json_lines(_Numbered(data)):
            number = first_line + line - 1
            if problem is not None:
                batcher.reject(number, problem)
            elif not isinstance(value, dict):
                batcher.reject(number, f"expected a JSON object, got {type(value).__name__}")
            else:
                batcher.add_record(number, value)
        yield batcher.take(self._chunks.position)


def _not_objects(lines: pa.Table) -> list[RejectedRow]:
    """The lines that are neither blank (whitespace, newline included) nor a JSON object
    (usually none), in line order. The chunk is valid UTF-8 here."""
    blank = pc.equal(pc.utf8_trim_whitespace(lines["line"]), "")
    kept = lines.filter(pc.invert(blank))
    return [
        RejectedRow(
            number,
            "invalid JSON"
            if kind is None
            else f"expected a JSON object, got {_JSON_KINDS.get(kind, kind.lower())}",
        )
        for number, kind in zip(kept[LINE].to_pylist(), kept["kind"].to_pylist(), strict=True)
    ]


class _Numbered:
    """Bytes read line by line (the `readline` that json_lines needs)."""

    def __init__(self, data: bytes) -> None:
        self._lines = iter(data.split(b"\n"))

    def readline(self, _limit: int = -1) -> bytes:
        line = next(self._lines, None)
        return b"" if line is None else line + b"\n"


def read_jsonl(stream: BinaryIO, *, batch_rows: int) -> Iterator[RawBatch]:
    yield from JsonLinesReader(stream, batch_rows=batch_rows).batches()
