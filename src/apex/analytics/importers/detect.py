"""Which reader a file needs: the caller's `format`, or a sniff of its first bytes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import BinaryIO

from apex.analytics.importers.base import FORMATS, RawBatch, UnreadableFile, joined, too_deep
from apex.analytics.importers.csv import CsvReader
from apex.analytics.importers.encoding import utf8_stream
from apex.analytics.importers.fields import normalize_name
from apex.analytics.importers.jsonl import read_jsonl
from apex.analytics.importers.litellm import LITELLM_KEYS, looks_like_litellm, read_litellm_json
from apex.analytics.importers.otlp import read_otlp

SNIFF_BYTES = 65_536
_BOM = b"\xef\xbb\xbf"
_LITELLM_CSV = frozenset(normalize_name(key) for key in LITELLM_KEYS)


def _text_head(head: bytes) -> str:
    """The head as text. Binary content (NUL bytes, or mostly invalid UTF-8) is refused; a few
    bad bytes are left for the readers to report on their lines."""
    text = head.decode("utf-8", errors="replace")
    if b"\x00" in head or text.count("\ufffd") > max(8, len(text) // 20):
        raise UnreadableFile(
            "This is a binary file, not a usage export (CSV, JSON Lines, "
            "OTLP JSON or LiteLLM spend logs).",
            code="unsupported_format",
        )
    return text


def detect_format(head: bytes) -> str:
    """csv, jsonl, otlp or litellm, from the first bytes of the file."""
    text = _text_head(head.removeprefix(_BOM)).lstrip()
    if not text:
        raise UnreadableFile("The file is empty.", code="empty_file")
    if text[0] == "[":
        return "litellm"
    if text[0] == "{":
        if '"resourceSpans"' in text[:4096]:
            return "otlp"
        first = text.split("\n", 1)[0]
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            return "jsonl"
        except RecursionError:
            raise too_deep() from None
        if isinstance(record, dict) and looks_like_litellm(set(record)):
            return "litellm"
        return "jsonl"
    header = {normalize_name(name) for name in text.split("\n", 1)[0].split(",")}
    return "litellm" if len(_LITELLM_CSV & header) >= 3 else "csv"


def read_batches(
    stream: BinaryIO, fmt: str | None, *, batch_rows: int
) -> tuple[str, Iterator[RawBatch]]:
    """The format used and the batches of `stream` (which must be seekable), read as UTF-8
    whatever its encoding (see `encoding.py`)."""
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    decoded = utf8_stream(stream, head)
    if decoded is not stream:
        stream = decoded
        head = stream.read(SNIFF_BYTES)
        stream.seek(0)
    if fmt is not None and fmt not in FORMATS:
        raise UnreadableFile(
            f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.", code="unsupported_format"
        )
    detected = detect_format(head)
    chosen = fmt or detected
    text = _text_head(head.removeprefix(_BOM)).lstrip()
    is_json = text[:1] in ("{", "[")
    if chosen == "csv" or (chosen == "litellm" and not is_json):
        batches = CsvReader(stream, batch_rows=batch_rows).batches()
    elif chosen == "otlp":
        batches = read_otlp(stream, batch_rows=batch_rows)
    elif chosen == "litellm":
        batches = read_litellm_json(stream, batch_rows=batch_rows)
    else:
        batches = read_jsonl(stream, batch_rows=batch_rows)
    return chosen, joined(batches, batch_rows)
