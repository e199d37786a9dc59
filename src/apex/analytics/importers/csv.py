"""CSV usage files: streamed in chunks, split into records with exact line numbers.

Records are found with a vectorized quote-parity scan (numpy), so each record's first physical
line is known even when quoted values hold newlines; records whose field count differs from the
header are reported with that line, the others are parsed by Arrow's CSV reader in one go.
Memory stays bounded by the chunk size whatever the file size.

Most chunks have no newline inside a quoted value: then record i sits on line first + i, and
Arrow may split records at every newline, which is what it does fastest. Only chunks with
multi-line values pay for the line-number search and Arrow's quote-aware record splitting.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from apex.analytics.importers.base import RawBatch, UnreadableFile
from apex.analytics.importers.fields import input_excludes_cache, match_fields
from apex.analytics.normalize import LINE, RejectedRow
from apex.analytics.schema import INPUT_EXCLUDES_CACHE

CHUNK_BYTES = 4 * 1_048_576
ARROW_BLOCK_BYTES = 4 * 1_048_576
MAX_RECORD_BYTES = 8 * 1_048_576
MAX_BATCH_ERRORS = 50
_QUOTE = ord('"')
_NEWLINE = ord("\n")
_DELIMITERS = (",", ";", "\t", "|")
_BOM = b"\xef\xbb\xbf"


def _sniff_delimiter(header: str) -> str:
    """The candidate that splits the header line most often, outside quotes."""
    outside = "".join(part for index, part in enumerate(header.split('"')) if index % 2 == 0)
    counts = {delimiter: outside.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _record_ends(view: np.ndarray) -> np.ndarray:
    """Offsets of the newlines that end records: those outside quotes (even quote parity)."""
    newlines = np.flatnonzero(view == _NEWLINE)
    quotes = np.flatnonzero(view == _QUOTE)
    if quotes.size == 0:
        return newlines
    outside: np.ndarray = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    return outside


class _Chunk:
    """Records of one chunk of bytes that starts at a record boundary."""

    def __init__(self, data: bytes, ends: np.ndarray, first_line: int, delimiter: int) -> None:
        self.view = np.frombuffer(data, dtype=np.uint8)
        self.data = data
        self.delimiter = delimiter
        self.starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
        self.ends = ends.astype(np.int64)
        # a carriage return other than in CRLF endings also ends a record for Arrow
        self.single_line = data.count(b"\n") == ends.size and data.count(b"\r") in (0, ends.size)
        if self.single_line:
            self.lines = first_line + np.arange(ends.size, dtype=np.int64)
            self.next_line = first_line + ends.size
        else:
            newlines = np.flatnonzero(self.view == _NEWLINE)
            self.lines = first_line + np.searchsorted(newlines, self.starts)
            self.next_line = first_line + newlines.size
        lengths = self.ends - self.starts
        carriage = np.zeros(lengths.size, dtype=bool)
        nonempty = lengths > 0
        carriage[nonempty] = self.view[self.ends[nonempty] - 1] == ord("\r")
        self.blank = (lengths == 0) | ((lengths == 1) & carriage)

    def fields(self) -> np.ndarray:
        """Fields per record (unquoted delimiters + 1): computed only when a chunk has bad rows."""
        separators = np.flatnonzero(self.view == self.delimiter)
        quotes = np.flatnonzero(self.view == _QUOTE)
        if quotes.size and separators.size:
            separators = separators[np.searchsorted(quotes, separators) % 2 == 0]
        return 1 + np.searchsorted(separators, self.ends) - np.searchsorted(separators, self.starts)


class CsvReader:
    def __init__(self, stream: BinaryIO, *, batch_rows: int) -> None:
        self._stream = stream
        self._batch_rows = batch_rows
        self._position = 0
        self._eof = False

    def _read(self, size: int) -> bytes:
        data = self._stream.read(size)
        self._position += len(data)
        self._eof = not data
        return data

    def batches(self) -> Iterator[RawBatch]:
        buffer = self._read(CHUNK_BYTES)
        if buffer.startswith(_BOM):
            buffer = buffer[len(_BOM) :]
        header, buffer, line = self._header(buffer)
        self._configure(header)
        while True:
            if not self._eof and len(buffer) < CHUNK_BYTES:
                buffer += self._read(CHUNK_BYTES)
            errors: list[RejectedRow] = []
            ends = _record_ends(np.frombuffer(buffer, dtype=np.uint8))
            tail_start = int(ends[-1]) + 1 if ends.size else 0
            if self._eof and tail_start < len(buffer):
                if buffer.count(b'"', tail_start) % 2:
                    tail_line = line + buffer.count(b"\n", 0, tail_start)
                    errors.append(RejectedRow(tail_line, "unterminated quoted field"))
                    buffer = buffer[:tail_start]
                else:
                    buffer += b"\n"
                    ends = _record_ends(np.frombuffer(buffer, dtype=np.uint8))
            if ends.size == 0:
                if self._eof:
                    if errors:
                        yield RawBatch(self._empty(), self._position, len(errors), errors)
                    return
                if len(buffer) > MAX_RECORD_BYTES:
                    cut = buffer.find(b"\n")
                    cut = len(buffer) - 1 if cut < 0 else cut
                    yield RawBatch(
                        self._empty(),
                        self._position,
                        1,
                        [
                            RejectedRow(
                                line,
                                f"record longer than {MAX_RECORD_BYTES // 1_048_576} MiB or "
                                "unterminated quoted field; skipped to the next line",
                            )
                        ],
                    )
                    line += 1
                    buffer = buffer[cut + 1 :]
                else:
                    buffer += self._read(CHUNK_BYTES)
                continue
            used = int(ends[-1]) + 1
            chunk = _Chunk(buffer[:used], ends, line, ord(self._delimiter))
            line = chunk.next_line
            buffer = buffer[used:]
            for batch in self._parse_chunk(chunk, errors):
                yield self._marked(batch)
            if self._eof and not buffer:
                return

    def _header(self, buffer: bytes) -> tuple[str, bytes, int]:
        """The first record, the bytes after it, and the line number the data starts on."""
        while True:
            ends = _record_ends(np.frombuffer(buffer, dtype=np.uint8))
            if ends.size or self._eof:
                break
            if len(buffer) > MAX_RECORD_BYTES:
                raise UnreadableFile("The first line of the file is not a CSV header.")
            buffer += self._read(CHUNK_BYTES)
        end = int(ends[0]) if ends.size else len(buffer)
        try:
            header = buffer[:end].decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise UnreadableFile("The file is not UTF-8 text.") from None
        if not header.strip():
            raise UnreadableFile("The file is empty: no CSV header.", code="empty_file")
        return header, buffer[end + 1 :], 2 + header.count("\n")

    def _configure(self, header: str) -> None:
        delimiter = _sniff_delimiter(header)
        names = next(csv.reader([header], delimiter=delimiter))
        mapped = match_fields(names)
        if "timestamp" not in mapped or "model" not in mapped:
            raise UnreadableFile(
                "The CSV header names no timestamp and model column: found "
                f"{', '.join(repr(name) for name in names[:30]) or 'nothing'}.",
                details={
                    "columns": names[:100],
                    "expected": ["timestamp", "model", "input_tokens", "output_tokens"],
                },
            )
        if "total_tokens" in mapped and not {"input_tokens", "output_tokens"} & set(mapped):
            raise UnreadableFile(
                f"The CSV header has a total ({mapped['total_tokens']!r}) but no input or output "
                "token column: input and output tokens have different prices, so a total alone "
                "cannot be priced. Add input_tokens and output_tokens columns (or prompt_tokens "
                "and completion_tokens).",
                code="token_columns_missing",
                details={"columns": names[:100], "needed": ["input_tokens", "output_tokens"]},
            )
        self._excludes_cache = input_excludes_cache(mapped)
        self._delimiter = delimiter
        self._width = len(names)
        self._column_names = [f"c{index}" for index in range(len(names))]
        self._include = {f"c{names.index(source)}": field for field, source in mapped.items()}

    def _marked(self, batch: RawBatch) -> RawBatch:
        """The batch with the source's input convention on every row (see `fields.py`)."""
        if self._excludes_cache and batch.table.num_rows:
            batch.table = batch.table.append_column(
                INPUT_EXCLUDES_CACHE, pa.array(["true"] * batch.table.num_rows, pa.string())
            )
        return batch

    def _empty(self) -> pa.Table:
        return pa.table({LINE: pa.array([], pa.int64())})

    def _parse_chunk(self, chunk: _Chunk, errors: list[RejectedRow]) -> Iterator[RawBatch]:
        rejected = len(errors)
        if not chunk.blank.any():
            table = self._parse_clean(chunk)
            if table is not None:
                for offset in range(0, table.num_rows, self._batch_rows):
                    yield RawBatch(
                        table.slice(offset, self._batch_rows), self._position, rejected, errors
                    )
                    rejected, errors = 0, []
                return
        fields = chunk.fields()
        wrong = (fields != self._width) & ~chunk.blank
        good = ~wrong & ~chunk.blank
        for index in np.flatnonzero(wrong)[:MAX_BATCH_ERRORS]:
            errors.append(
                RejectedRow(
                    int(chunk.lines[index]),
                    f"expected {self._width} fields as in the header, found {int(fields[index])}",
                )
            )
        rejected += int(wrong.sum())
        good_index = np.flatnonzero(good)
        for offset in range(0, max(good_index.size, 1), self._batch_rows):
            part = good_index[offset : offset + self._batch_rows]
            table, bad = self._parse_records(chunk, part)
            for line_number, message in bad:
                if len(errors) < MAX_BATCH_ERRORS:
                    errors.append(RejectedRow(line_number, message))
            yield RawBatch(
                table, self._position, rejected + len(bad), sorted(errors, key=lambda e: e.line)
            )
            rejected, errors = 0, []

    def _parse_clean(self, chunk: _Chunk) -> pa.Table | None:
        """The whole chunk in one Arrow parse, or None when any record is not well formed.

        Text that is not UTF-8 goes to the record-by-record path at once: Arrow cannot hand
        such a row to the invalid-row callback and would print the failure to stderr."""
        if not chunk.data.isascii():
            try:
                chunk.data.decode("utf-8")
            except UnicodeDecodeError:
                return None
        invalid: list[object] = []

        def skip(row: object) -> str:
            invalid.append(row)
            return "skip"

        table = self._arrow(chunk.data, skip, multi_line=not chunk.single_line)
        if table is None or invalid or table.num_rows != chunk.starts.size:
            return None
        return table.append_column(LINE, pa.array(chunk.lines, pa.int64()))

    def _arrow(
        self,
        data: bytes,
        on_invalid: Callable[[Any], str] | None = None,
        *,
        multi_line: bool = True,
    ) -> pa.Table | None:
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(
                    column_names=self._column_names, block_size=ARROW_BLOCK_BYTES
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self._delimiter,
                    quote_char='"',
                    double_quote=True,
                    escape_char=False,
                    newlines_in_values=multi_line,
                    ignore_empty_lines=True,
                    invalid_row_handler=on_invalid,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in self._include},
                    include_columns=list(self._include),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid:
            return None
        return table.rename_columns([self._include[name] for name in table.column_names])

    def _parse_records(
        self, chunk: _Chunk, index: np.ndarray
    ) -> tuple[pa.Table, list[tuple[int, str]]]:
        if index.size == 0:
            return self._empty(), []
        data = b"".join(chunk.data[chunk.starts[i] : chunk.ends[i] + 1] for i in index)
        table = self._arrow(data)
        if table is None or table.num_rows != index.size:
            return self._parse_slowly(chunk, index)
        return table.append_column(LINE, pa.array(chunk.lines[index], pa.int64())), []

    def _parse_slowly(
        self, chunk: _Chunk, index: np.ndarray
    ) -> tuple[pa.Table, list[tuple[int, str]]]:
        """Record by record: only for chunks Arrow refused (bad UTF-8, stray quotes)."""
        positions = [int(name[1:]) for name in self._include]
        columns: dict[str, list[str | None]] = {field: [] for field in self._include.values()}
        lines: list[int] = []
        bad: list[tuple[int, str]] = []
        for i in index:
            line_number = int(chunk.lines[i])
            raw = chunk.data[chunk.starts[i] : chunk.ends[i]]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.append((line_number, "not valid UTF-8 text"))
                continue
            try:
                values = next(csv.reader([text.rstrip("\r")], delimiter=self._delimiter), [])
            except csv.Error:
                bad.append(
                    (
                        line_number,
                        "not a well-formed CSV record (a line break inside a "
                        "value that is not quoted?)",
                    )
                )
                continue
            if len(values) != self._width:
                bad.append(
                    (
                        line_number,
                        f"expected {self._width} fields as in the header, found {len(values)}",
                    )
                )
                continue
            lines.append(line_number)
            for position, field in zip(positions, self._include.values(), strict=True):
                columns[field].append(values[position])
        table = pa.table(
            {
                **{field: pa.array(values, pa.string()) for field, values in columns.items()},
                LINE: pa.array(lines, pa.int64()),
            }
        )
        return table, bad
