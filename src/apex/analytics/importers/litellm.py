"""LiteLLM spend-log exports (`LiteLLM_SpendLogs` rows): a JSON array, JSON Lines, or CSV.

The columns map through the ordinary aliases (startTime, spend, prompt_tokens, ...); this
module adds what LiteLLM keeps inside `metadata`: cache reads and writes, reasoning tokens, the
error class, and a `feature` passed as spend-log metadata. Prompt and response bodies are
dropped. LiteLLM reports usage the OpenAI way whatever the provider: `prompt_tokens` counts
the cache reads and writes, as the ledger does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from apex.analytics.importers.base import RawBatch, UnreadableFile, too_deep
from apex.analytics.importers.records import RecordBatcher, json_lines

MAX_DOCUMENT_BYTES = 64 * 1_048_576
LITELLM_KEYS = frozenset({"request_id", "call_type", "spend", "startTime"})
_DROPPED = ("messages", "response", "proxy_server_request", "metadata", "api_key")


def looks_like_litellm(keys: set[str]) -> bool:
    return len(LITELLM_KEYS & keys) >= 3


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def litellm_record(record: dict[str, Any]) -> dict[str, Any]:
    """A spend-log row with the metadata fields lifted to the top and the bodies dropped."""
    metadata = record.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except (json.JSONDecodeError, RecursionError):
            metadata = None
    usage = _dig(metadata, "additional_usage_values") or {}
    lifted = {
        "cached_input_tokens": _dig(usage, "prompt_tokens_details", "cached_tokens")
        or _dig(usage, "cache_read_input_tokens"),
        "cache_write_input_tokens": _dig(usage, "cache_creation_input_tokens")
        or _dig(usage, "prompt_tokens_details", "cache_creation_tokens"),
        "reasoning_tokens": _dig(usage, "completion_tokens_details", "reasoning_tokens"),
        "error_type": _dig(metadata, "error_information", "error_class")
        or _dig(metadata, "error_information", "error_code"),
        "feature": _dig(metadata, "spend_logs_metadata", "feature"),
    }
    kept = {key: value for key, value in record.items() if key not in _DROPPED}
    if not kept.get("model"):
        kept["model"] = record.get("model_group")
    return {**kept, **{key: value for key, value in lifted.items() if value not in (None, "")}}


def read_litellm_json(stream: BinaryIO, *, batch_rows: int) -> Iterator[RawBatch]:
    """A JSON array (the `/spend/logs` API answer) or JSON Lines of spend-log rows."""
    head = stream.read(1)
    while head and head.isspace():
        head = stream.read(1)
    if head == b"[":
        yield from _read_array(head + stream.read(MAX_DOCUMENT_BYTES), stream, batch_rows)
        return
    batcher = RecordBatcher(batch_rows)
    rest = _Prefixed(head, stream)
    position = 0
    for line, value, error, position in json_lines(rest):
        if error is not None:
            batcher.reject(line, error)
        elif not isinstance(value, dict):
            batcher.reject(line, f"expected a JSON object, got {type(value).__name__}")
        else:
            batcher.add_record(line, litellm_record(value))
        if batcher.full:
            yield batcher.take(position)
    yield batcher.take(position)


def _read_array(data: bytes, stream: BinaryIO, batch_rows: int) -> Iterator[RawBatch]:
    if stream.read(1):
        raise UnreadableFile(
            f"A LiteLLM JSON array over {MAX_DOCUMENT_BYTES // 1_048_576} MiB cannot be read "
            "at once: export it as JSON Lines (one row per line) or CSV.",
            code="file_too_large_for_format",
        )
    try:
        rows = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnreadableFile(f"The file is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep() from None
    if not isinstance(rows, list):
        raise UnreadableFile("Expected a JSON array of spend-log rows.")
    batcher = RecordBatcher(batch_rows)
    for index, row in enumerate(rows, start=1):
        if isinstance(row, dict):
            batcher.add_record(index, litellm_record(row))
        else:
            batcher.reject(index, f"array element {index}: expected an object")
        if batcher.full:
            yield batcher.take(len(data))
    yield batcher.take(len(data))


class _Prefixed:
    """A stream with bytes already read put back in front (for readline)."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readline(self, limit: int = -1) -> bytes:
        if self._prefix:
            prefix, self._prefix = self._prefix, b""
            if prefix.endswith(b"\n"):
                return prefix
            return prefix + self._stream.readline(limit - len(prefix) if limit > 0 else -1)
        return self._stream.readline(limit)
