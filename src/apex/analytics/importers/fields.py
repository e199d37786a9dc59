"""Header and key names as found in the wild, mapped to the ledger's field names.

Matching is case-insensitive and ignores punctuation and camelCase, so `Prompt Tokens`,
`promptTokens`, `prompt-tokens` and `gen_ai.usage.prompt_tokens` all find their field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "time",
        "ts",
        "datetime",
        "date_time",
        "created_at",
        "created",
        "start_time",
        "request_time",
        "event_time",
        "timestamp_utc",
        "start",
        "date",
        "start_time_unix_nano",
    ),
    "end_time": ("end_time", "finished_at", "completed_at", "end_time_unix_nano"),
    "provider": (
        "provider",
        "gen_ai_provider_name",
        "gen_ai_system",
        "custom_llm_provider",
        "llm_provider",
        "vendor",
        "api_provider",
    ),
    "model": (
        "model",
        "model_name",
        "gen_ai_request_model",
        "gen_ai_response_model",
        "llm_model",
        "engine",
        "deployment",
        "model_group",
    ),
    "operation": (
        "operation",
        "gen_ai_operation_name",
        "operation_name",
        "call_type",
        "request_type",
    ),
    "input_tokens": (
        "input_tokens",
        "prompt_tokens",
        "gen_ai_usage_input_tokens",
        "gen_ai_usage_prompt_tokens",
        "tokens_in",
        "input_token_count",
        "prompt_token_count",
        "n_input_tokens",
    ),
    "output_tokens": (
        "output_tokens",
        "completion_tokens",
        "gen_ai_usage_output_tokens",
        "gen_ai_usage_completion_tokens",
        "tokens_out",
        "output_token_count",
        "completion_token_count",
        "candidates_token_count",
        "n_output_tokens",
    ),
    "total_tokens": ("total_tokens", "tokens", "gen_ai_usage_total_tokens"),
    "cached_input_tokens": (
        "cached_input_tokens",
        "cached_tokens",
        "cache_read_input_tokens",
        "cache_read_tokens",
        "gen_ai_usage_cache_read_input_tokens",
        "cached_prompt_tokens",
        "prompt_cached_tokens",
        "input_cached_tokens",
    ),
    "cache_write_input_tokens": (
        "cache_write_input_tokens",
        "cache_creation_input_tokens",
        "cache_write_tokens",
        "cache_creation_tokens",
        "gen_ai_usage_cache_write_input_tokens",
        "gen_ai_usage_cache_creation_input_tokens",
        "cache_creation_input_token_count",
    ),
    "reasoning_tokens": (
        "reasoning_tokens",
        "reasoning_output_tokens",
        "gen_ai_usage_reasoning_output_tokens",
        "thinking_tokens",
    ),
    "cost_usd": (
        "cost_usd",
        "cost",
        "spend",
        "total_cost",
        "cost_in_usd",
        "usd",
        "price",
        "response_cost",
        "gen_ai_usage_cost",
    ),
    "latency_ms": (
        "latency_ms",
        "latency",
        "duration_ms",
        "duration",
        "response_time_ms",
        "response_time",
        "elapsed_ms",
        "request_duration_ms",
        "total_duration_ms",
    ),
    "latency_s": ("latency_s", "latency_seconds", "duration_s", "duration_seconds", "elapsed_s"),
    "ttft_ms": (
        "ttft_ms",
        "ttft",
        "time_to_first_token_ms",
        "time_to_first_token",
        "first_token_ms",
    ),
    "first_token_time": ("completion_start_time", "first_token_time", "first_token_at"),
    "status": ("status", "state", "outcome", "result", "success", "status_code", "http_status"),
    "error_type": (
        "error_type",
        "error",
        "error_code",
        "error_class",
        "exception_type",
        "error_message",
    ),
    "feature": (
        "feature",
        "use_case",
        "usecase",
        "task",
        "workflow",
        "component",
        "app_feature",
        "gen_ai_agent_name",
        "agent_name",
        "trace_name",
    ),
    "tags": ("tags", "labels", "request_tags", "tag"),
    "end_user": (
        "end_user",
        "end_user_id",
        "enduser_id",
        "user",
        "user_id",
        "customer",
        "customer_id",
        "account",
    ),
    "prompt_hash": ("prompt_hash", "input_hash", "request_hash", "prompt_sha256"),
    "prefix_hash": (
        "prefix_hash",
        "system_prompt_hash",
        "system_hash",
        "template_hash",
        "prompt_template_hash",
    ),
    "prefix_tokens": ("prefix_tokens", "system_prompt_tokens", "prefix_token_count"),
    "prompt": ("prompt", "prompt_text", "input_text"),
    "request_id": ("request_id", "id", "call_id", "span_id", "response_id", "gen_ai_response_id"),
}

_ALIASES = frozenset(alias for aliases in FIELD_ALIASES.values() for alias in aliases)
# Anthropic's usage object names its cache counts so, and counts `input_tokens` without them
_CACHE_EXCLUDED_FROM_INPUT = frozenset({"cache_read_input_tokens", "cache_creation_input_tokens"})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize_name(name: str) -> str:
    """`completionStartTime`, `Completion Start-Time` -> `completion_start_time`."""
    spaced = _CAMEL.sub("_", name.strip().lstrip("\ufeff"))
    return _NON_WORD.sub("_", spaced.lower()).strip("_")


def match_fields(names: Iterable[str]) -> dict[str, str]:
    """For each ledger field, the first source name (in alias order) that means it.

    Nested keys arrive dotted (`usage.prompt_tokens`): the full path is tried first, then its
    last segment. Returns {ledger field: source name as written}; the rest is left out.
    """
    names = list(names)
    by_normal: dict[str, str] = {}
    for name in names:
        by_normal.setdefault(normalize_name(name), name)
    for name in names:
        # `gen_ai.usage.cache_read.input_tokens` means a field as a whole: its last segment
        # must not stand for input_tokens
        if "." in name and normalize_name(name) not in _ALIASES:
            by_normal.setdefault(normalize_name(name.rsplit(".", 1)[1]), name)
    found: dict[str, str] = {}
    taken: set[str] = set()
    for field, aliases in FIELD_ALIASES.items():
        for alias in aliases:
            source = by_normal.get(alias)
            if source is not None and source not in taken:
                found[field] = source
                taken.add(source)
                break
    return found


def _last_segment(name: str) -> str:
    return normalize_name(name.rsplit(".", 1)[-1])


def input_excludes_cache(found: dict[str, str]) -> bool:
    """Whether a source mapped by `match_fields` counts input tokens without the cache reads
    and writes: Anthropic's usage object (`input_tokens` beside `cache_read_input_tokens` /
    `cache_creation_input_tokens`). OpenAI's `prompt_tokens`, the OpenTelemetry GenAI
    attributes and the ledger's own columns all count them in."""
    source = found.get("input_tokens")
    if (
        source is None
        or _last_segment(source) != "input_tokens"
        or normalize_name(source).startswith("gen_ai")
    ):
        return False
    return any(
        _last_segment(found[field]) in _CACHE_EXCLUDED_FROM_INPUT
        for field in ("cached_input_tokens", "cache_write_input_tokens")
        if field in found
    )
