"""The versioned price catalog: per-model USD prices per million tokens, and lookups over it.

Prices come from `data/prices.json` (versioned, with its as-of date), optionally extended or
overridden by a server-wide file (`APEX_PRICES_FILE`) and by each user's own overrides. Model
names are matched conservatively (case, provider prefixes, date suffixes, listed aliases): a name
that does not match is reported as unknown rather than priced by a guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from apex.errors import BadRequest, NotFound

Tier = Literal["small", "mid", "frontier"]
TIERS: tuple[Tier, ...] = get_args(Tier)
Kind = Literal["chat", "embedding"]
KINDS: tuple[str, ...] = get_args(Kind)
PriceSource = Literal["catalog", "file", "user"]
TIER_RANK: dict[str, int] = {tier: rank for rank, tier in enumerate(TIERS)}
MILLION = Decimal(1_000_000)

PROVIDER_ALIASES: dict[str, str] = {
    "openai": "openai", "azure": "azure.ai.openai", "azure_openai": "azure.ai.openai",
    "azure.ai.openai": "azure.ai.openai", "anthropic": "anthropic", "claude": "anthropic",
    "google": "gcp.gemini", "gemini": "gcp.gemini", "google_ai": "gcp.gemini",
    "gcp.gemini": "gcp.gemini", "gcp.gen_ai": "gcp.gemini", "vertex_ai": "gcp.vertex_ai",
    "vertex": "gcp.vertex_ai", "gcp.vertex_ai": "gcp.vertex_ai", "mistral": "mistral_ai",
    "mistralai": "mistral_ai", "mistral_ai": "mistral_ai", "bedrock": "aws.bedrock",
    "aws": "aws.bedrock", "aws.bedrock": "aws.bedrock", "together": "together_ai",
    "together_ai": "together_ai", "togetherai": "together_ai", "groq": "groq",
    "fireworks": "fireworks_ai", "fireworks_ai": "fireworks_ai", "deepseek": "deepseek",
    "cohere": "cohere", "x_ai": "x_ai", "xai": "x_ai", "perplexity": "perplexity",
}
# Hosts that serve another maker's models at that maker's list price.
_SAME_PRICE_HOSTS: dict[str, str] = {
    "azure.ai.openai": "openai", "gcp.vertex_ai": "gcp.gemini", "aws.bedrock": "anthropic",
}
_PREFIX_SEGMENTS = frozenset(PROVIDER_ALIASES) | {"models", "openrouter", "litellm_proxy"}
_DATE_SUFFIX = re.compile(r"(?:[-@](?:20\d\d-?\d\d-?\d\d|\d{4}|latest|v\d+(?::\d+)?))+$")
_BEDROCK_PREFIX = re.compile(r"^(?:[a-z]{2}\.)?(?:anthropic|meta|mistral|amazon|cohere)\.")


def tier_floor(tier: Tier, allowed: Tier = "small") -> Tier:
    """The lowest tier a workload running on `tier` may move to: one step down at most (a
    bigger drop in capability is a rewrite, not a routing change), and never below `allowed`,
    the lowest tier the workload's own signals allow."""
    return TIERS[max(TIER_RANK[tier] - 1, TIER_RANK[allowed])]


def normalize_provider(raw: str | None) -> str:
    """Provider names as the OpenTelemetry GenAI conventions spell them ('' when unknown)."""
    if not raw:
        return ""
    key = raw.strip().lower().replace(" ", "_")
    return PROVIDER_ALIASES.get(key, key)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens. `cached_input`/`reasoning` are None where not distinct."""

    id: str
    provider: str
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    reasoning: Decimal | None = None
    batch_discount: Decimal = Decimal(0)
    tier: Tier = "mid"
    kind: Kind = "chat"
    aliases: tuple[str, ...] = ()
    source: PriceSource = "catalog"

    @property
    def effective_cached_input(self) -> Decimal:
        return self.input if self.cached_input is None else self.cached_input

    @property
    def reasoning_model(self) -> bool:
        """A reasoning model, as the catalog marks one: an entry with its own reasoning price."""
        return self.reasoning is not None

    @property
    def effective_reasoning(self) -> Decimal:
        """What a reasoning token costs here: the reasoning price of a reasoning model; on any
        other model the same tokens are billed as output tokens."""
        return self.output if self.reasoning is None else self.reasoning

    def cost(self, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0,
             reasoning_tokens: int = 0, batch: bool = False) -> Decimal:
        """Exact USD for one call (or a sum of calls): cached and reasoning tokens priced apart."""
        total = (
            Decimal(input_tokens - cached_input_tokens) * self.input
            + Decimal(cached_input_tokens) * self.effective_cached_input
            + Decimal(output_tokens - reasoning_tokens) * self.output
            + Decimal(reasoning_tokens) * self.effective_reasoning
        ) / MILLION
        return total * (1 - self.batch_discount) if batch else total

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "provider": self.provider, "kind": self.kind, "tier": self.tier,
            "input": self.input, "cached_input": self.cached_input, "output": self.output,
            "reasoning": self.reasoning, "batch_discount": self.batch_discount,
            "aliases": list(self.aliases), "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class CheaperModel:
    """A cheaper model for a given token mix, with the cost of that mix on both."""

    model: ModelPrice
    current_cost: Decimal
    alternative_cost: Decimal

    @property
    def savings(self) -> Decimal:
        return self.current_cost - self.alternative_cost


# Far above any model's price ($1 a token), and low enough that a price times the largest token
# count the ledger accepts (10^15) stays exact in the re-pricing arithmetic.
MAX_PRICE_PER_MILLION = Decimal(1_000_000)


def _decimal(value: Any, what: str, *, optional: bool = False) -> Decimal | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise BadRequest(f"{what}: expected a number, got {_shown(value)}", code="invalid_price")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise BadRequest(f"{what}: expected a number, got {_shown(value)}",
                         code="invalid_price") from None
    if not number.is_finite() or number < 0 or number > MAX_PRICE_PER_MILLION:
        raise BadRequest(f"{what}: expected a number from 0 to {MAX_PRICE_PER_MILLION:,} (USD "
                         f"per million tokens), got {_shown(value)}", code="invalid_price")
    return number


def _shown(value: Any) -> str:
    """A value of a hostile document, quoted short enough for an error message."""
    return _short(repr(value))


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _text(entry: Mapping[str, Any], key: str, default: str, what: str) -> str:
    value = entry.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadRequest(f"{what}.{key}: expected a string, got {_shown(value)}",
                         code="invalid_price")
    return value


def price_from_dict(entry: Mapping[str, Any], *, source: PriceSource) -> ModelPrice:
    """One catalog entry (the JSON shape of prices.json) to a ModelPrice, validated."""
    model_id = entry.get("id") or entry.get("model") or ""
    if not isinstance(model_id, str) or not model_id.strip():
        raise BadRequest("price entry: `id` (the model name) is required", code="invalid_price")
    model_id = model_id.strip()
    label = _short(model_id)  # a model name in a message: the name itself may be hostile
    tier = _text(entry, "tier", "mid", label)
    kind = _text(entry, "kind", "chat", label)
    provider = _text(entry, "provider", "", label)
    aliases = entry.get("aliases") or ()
    if not isinstance(aliases, list | tuple) or not all(isinstance(a, str) for a in aliases):
        raise BadRequest(f"{label}.aliases: expected a list of model names",
                         code="invalid_price")
    if tier not in TIER_RANK or kind not in KINDS:
        raise BadRequest(f"price entry {label}: tier must be small, mid or frontier and kind "
                         "chat or embedding", code="invalid_price")
    discount = _decimal(entry.get("batch_discount", 0), f"{label}.batch_discount")
    assert discount is not None
    if discount > 1:
        raise BadRequest(f"{label}.batch_discount: a fraction between 0 and 1",
                         code="invalid_price")
    input_price = _decimal(entry.get("input"), f"{label}.input")
    output_price = _decimal(entry.get("output"), f"{label}.output")
    assert input_price is not None and output_price is not None
    return ModelPrice(
        id=model_id,
        provider=normalize_provider(provider),
        input=input_price,
        output=output_price,
        cached_input=_decimal(entry.get("cached_input"), f"{label}.cached_input",
                              optional=True),
        reasoning=_decimal(entry.get("reasoning"), f"{label}.reasoning", optional=True),
        batch_discount=discount,
        tier=tier,
        kind=kind,
        aliases=tuple(aliases),
        source=source,
    )


def _name_candidates(model: str) -> list[str]:
    """The spellings a model name is looked up under, most literal first."""
    key = model.strip().lower()
    candidates = [key]
    segments = key.split("/")
    while len(segments) > 1 and segments[0] in _PREFIX_SEGMENTS:
        segments = segments[1:]
        candidates.append("/".join(segments))
    base = candidates[-1]
    bedrock = _BEDROCK_PREFIX.sub("", base)
    for name in (base, bedrock):
        stripped = _DATE_SUFFIX.sub("", name)
        candidates.extend([name, stripped])
    return list(dict.fromkeys(candidates))


@dataclass
class PriceCatalog:
    version: str
    as_of: str
    models: tuple[ModelPrice, ...]
    _index: dict[str, list[ModelPrice]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for price in self.models:
            for name in (price.id, *price.aliases):
                self._index.setdefault(name.lower(), []).append(price)

    @classmethod
    def load(cls, path: Path | None = None, *, extra_file: Path | None = None) -> "PriceCatalog":
        """The packaged catalog (or `path`), then the entries of `extra_file` on top."""
        if path is None:
            text = resources.files("apex.analytics").joinpath("data/prices.json").read_text()
        else:
            text = Path(path).read_text()
        document = json.loads(text)
        catalog = cls(
            version=str(document["version"]),
            as_of=str(document["as_of"]),
            models=tuple(price_from_dict(entry, source="catalog")
                         for entry in document["models"]),
        )
        if extra_file is not None:
            extra = json.loads(Path(extra_file).read_text())
            entries = extra["models"] if isinstance(extra, dict) else extra
            catalog = catalog.with_overrides(price_from_dict(entry, source="file")
                                             for entry in entries)
        return catalog

    def with_overrides(self, overrides: Iterable[ModelPrice]) -> "PriceCatalog":
        """A catalog where each override replaces the entry of the same provider and id."""
        replaced = {(price.provider, price.id.lower()): price for price in overrides}
        if not replaced:
            return self
        kept = [price for price in self.models
                if (price.provider, price.id.lower()) not in replaced]
        return PriceCatalog(version=self.version, as_of=self.as_of,
                            models=(*replaced.values(), *kept))

    def resolve(self, model: str, provider: str | None = None) -> ModelPrice | None:
        """The price of `model` as a file names it, or None when it is unknown or ambiguous.

        Overrides come first in `models`, so they win over catalog entries of the same name.
        """
        wanted = normalize_provider(provider)
        for name in _name_candidates(model):
            entries = self._index.get(name)
            if not entries:
                continue
            if wanted:
                exact = [entry for entry in entries if entry.provider == wanted]
                if not exact and wanted in _SAME_PRICE_HOSTS:
                    exact = [e for e in entries if e.provider == _SAME_PRICE_HOSTS[wanted]]
                if exact:
                    return exact[0]
            makers = {entry.provider for entry in entries}
            if len(makers) == 1:
                return entries[0]
            return None
        return None

    def price(self, model: str, provider: str | None = None) -> ModelPrice:
        found = self.resolve(model, provider)
        if found is None:
            raise NotFound(f"No price is known for model {model!r}.", code="unknown_model",
                           details={"model": model, "provider": provider or ""})
        return found

    def cheaper_alternatives(
        self, model: str, provider: str | None = None, *, input_tokens: int,
        output_tokens: int, cached_input_tokens: int = 0, reasoning_tokens: int = 0,
        min_tier: Tier | None = None, same_provider: bool = False, limit: int = 5,
    ) -> list[CheaperModel]:
        """Models of the same kind that would have cost less for this token mix, cheapest first.

        `min_tier` keeps only models at least that capable (small < mid < frontier); the
        caller decides how far down a workload may go (see `tier_floor`). Every model is
        priced with `ModelPrice.cost`: cached tokens at its cached-input price, and the
        mix's reasoning tokens (part of `output_tokens`) at its reasoning price when it is a
        reasoning model, as output tokens when it is not.
        """
        current = self.price(model, provider)

        def cost(price: ModelPrice) -> Decimal:
            return price.cost(input_tokens=input_tokens, output_tokens=output_tokens,
                              cached_input_tokens=cached_input_tokens,
                              reasoning_tokens=reasoning_tokens)

        current_cost = cost(current)
        floor = TIER_RANK[min_tier] if min_tier else -1
        seen: set[tuple[str, str]] = set()
        found: list[CheaperModel] = []
        for candidate in self.models:
            key = (candidate.provider, candidate.id.lower())
            if key in seen or candidate is current:
                continue
            seen.add(key)
            if candidate.kind != current.kind or TIER_RANK[candidate.tier] < floor:
                continue
            if same_provider and candidate.provider != current.provider:
                continue
            alternative_cost = cost(candidate)
            if alternative_cost < current_cost:
                found.append(CheaperModel(candidate, current_cost, alternative_cost))
        found.sort(key=lambda alternative: (alternative.alternative_cost, alternative.model.id))
        return found[:limit]

    def resolver(self) -> Callable[[str, str], ModelPrice | None]:
        """`(provider, model) -> ModelPrice | None`, the shape the normalizer asks for."""
        return lambda provider, model: self.resolve(model, provider)
