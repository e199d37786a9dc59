"""LiteLLM's `model_prices_and_context_window.json`, read as catalog entries.

Teams that run LiteLLM already keep this file up to date, so `APEX_PRICES_FILE` accepts it as
it is. Its prices are USD per token (floats); the catalog's are USD per million. Only the
entries billed by the token (`mode` chat, completion, responses or embedding) become prices;
image, audio, rerank and moderation entries and the `sample_spec` template are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from apex.errors import BadRequest

_MODES = {"chat": "chat", "completion": "chat", "responses": "chat", "embedding": "embedding"}
_TEMPLATE = "sample_spec"
_TIER_SUFFIX = "_above_"
# catalog price field <- LiteLLM per-token key (tier keys add `_above_<n>k_tokens`)
_BASE_KEYS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cached_input": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost",
    "reasoning": "output_cost_per_reasoning_token",
}
_TIER_KEYS = {field: key for field, key in _BASE_KEYS.items() if field != "reasoning"}
MILLION = Decimal(1_000_000)


def looks_like_litellm_prices(document: Any) -> bool:
    """A LiteLLM price map: an object of model names to objects with per-token costs."""
    if not isinstance(document, dict) or "models" in document:
        return False
    entries = [value for key, value in document.items() if key != _TEMPLATE]
    return any(
        isinstance(value, dict) and "input_cost_per_token" in value for value in entries[:50]
    )


def _per_million(value: Any, what: str) -> str | None:
    """A per-token cost as a per-million price string, exact: `3e-06` -> `3`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"{what}: expected a number, got {value!r:.60}", code="invalid_price")
    try:
        number = Decimal(str(value)) * MILLION
    except InvalidOperation:
        raise BadRequest(
            f"{what}: expected a number, got {value!r:.60}", code="invalid_price"
        ) from None
    return format(number.normalize(), "f")


def _tier_thresholds(entry: Mapping[str, Any]) -> list[int]:
    """The long-context thresholds an entry has prices for (`..._above_200k_tokens` -> 200000)."""
    found: set[int] = set()
    for key in entry:
        if key.startswith("input_cost_per_token" + _TIER_SUFFIX) and key.endswith("_tokens"):
            size = key[len("input_cost_per_token" + _TIER_SUFFIX) : -len("_tokens")]
            if size.endswith("k") and size[:-1].isdigit():
                found.add(int(size[:-1]) * 1000)
    return sorted(found)


def _provider(entry: Mapping[str, Any]) -> str:
    """`vertex_ai-anthropic_models` -> `vertex_ai`: LiteLLM names a host and a model family;
    `text-completion-openai` -> `openai`; `bedrock_converse` -> `bedrock`."""
    raw = entry.get("litellm_provider")
    if not isinstance(raw, str):
        return ""
    raw = raw.removeprefix("text-completion-")
    if raw.startswith("vertex_ai"):
        return "vertex_ai"
    return "bedrock" if raw.startswith("bedrock") else raw


def catalog_entry(name: str, entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """One LiteLLM entry in the catalog's JSON shape, or None when it is not billed by token."""
    kind = _MODES.get(str(entry.get("mode", "chat")))
    if kind is None or entry.get("input_cost_per_token") is None:
        return None
    if entry.get("output_cost_per_token") is None and kind == "chat":
        return None
    prices = {
        field: _per_million(entry.get(key), f"{name}.{key}") for field, key in _BASE_KEYS.items()
    }
    prices["output"] = prices["output"] or "0"
    converted: dict[str, Any] = {"id": name, "provider": _provider(entry), "kind": kind, **prices}
    tiers = []
    for threshold in _tier_thresholds(entry):
        suffix = f"{_TIER_SUFFIX}{threshold // 1000}k_tokens"
        tier = {
            field: _per_million(entry.get(key + suffix), f"{name}.{key}{suffix}")
            for field, key in _TIER_KEYS.items()
        }
        if tier["input"] is not None:
            tier["output"] = tier["output"] or prices["output"]
            tiers.append({"above_input_tokens": threshold, **tier})
    if tiers:
        converted["tiers"] = tiers
    discount = _batch_discount(entry)
    if discount is not None:
        converted["batch_discount"] = discount
    return converted


def _batch_discount(entry: Mapping[str, Any]) -> str | None:
    """The catalog's batch discount from LiteLLM's batch input price (1 - batch / standard)."""
    standard = entry.get("input_cost_per_token")
    batch = entry.get("input_cost_per_token_batches")
    if not isinstance(standard, int | float) or not isinstance(batch, int | float):
        return None
    if isinstance(standard, bool) or isinstance(batch, bool) or standard <= 0:
        return None
    discount = 1 - Decimal(str(batch)) / Decimal(str(standard))
    return format(discount.normalize(), "f") if 0 <= discount <= 1 else None


def catalog_entries(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every entry of a LiteLLM price map that is billed by token, in the catalog's shape."""
    entries = []
    for name, entry in document.items():
        if name == _TEMPLATE or not isinstance(entry, dict):
            continue
        converted = catalog_entry(name, entry)
        if converted is not None:
            entries.append(converted)
    return entries
