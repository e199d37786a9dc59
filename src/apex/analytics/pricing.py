"""The versioned price catalog: per-model USD prices per million tokens, and lookups over it.

Prices come from `data/prices.json` (versioned, with its as-of date), optionally extended or
overridden by a server-wide file (`APEX_PRICES_FILE`, in this shape or LiteLLM's) and by each
user's own overrides. Each kind of token has its price (fresh input, cache reads, cache writes,
output, reasoning), and a model may bill a long request wholly at other prices (`tiers`). Model
names are matched conservatively (case, provider, region and route prefixes, date suffixes,
listed aliases): a name that does not match is reported as unknown rather than priced by a
guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast, get_args

from apex.analytics.litellm_prices import catalog_entries, looks_like_litellm_prices
from apex.errors import BadRequest, NotFound

Tier = Literal["small", "mid", "frontier"]
TIERS: tuple[Tier, ...] = get_args(Tier)
Kind = Literal["chat", "embedding"]
KINDS: tuple[str, ...] = get_args(Kind)
PriceSource = Literal["catalog", "file", "user"]
TIER_RANK: dict[str, int] = {tier: rank for rank, tier in enumerate(TIERS)}
MILLION = Decimal(1_000_000)

PROVIDER_ALIASES: dict[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure.ai.openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "claude": "anthropic",
    "google": "gcp.gemini",
    "gemini": "gcp.gemini",
    "google_ai": "gcp.gemini",
    "gcp.gemini": "gcp.gemini",
    "gcp.gen_ai": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertex": "gcp.vertex_ai",
    "gcp.vertex_ai": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "mistral_ai": "mistral_ai",
    "bedrock": "aws.bedrock",
    "aws": "aws.bedrock",
    "aws.bedrock": "aws.bedrock",
    "together": "together_ai",
    "together_ai": "together_ai",
    "togetherai": "together_ai",
    "groq": "groq",
    "fireworks": "fireworks_ai",
    "fireworks_ai": "fireworks_ai",
    "deepseek": "deepseek",
    "cohere": "cohere",
    "x_ai": "x_ai",
    "xai": "x_ai",
    "perplexity": "perplexity",
}
# Hosts that serve another maker's models at that maker's list price.
_SAME_PRICE_HOSTS: dict[str, str] = {
    "azure.ai.openai": "openai",
    "gcp.vertex_ai": "gcp.gemini",
    "aws.bedrock": "anthropic",
}
# Path segments a gateway or a cloud puts before the model's own name: provider routes
# (`bedrock/`, `vertex_ai/`, `openrouter/`), Bedrock's API routes and AWS regions
# (`bedrock/converse/us-east-1/...`).
_PREFIX_SEGMENTS = frozenset(PROVIDER_ALIASES) | {
    "models",
    "openrouter",
    "litellm_proxy",
    "converse",
    "invoke",
    "bedrock_converse",
    "vertex_ai_beta",
    "azure_ai",
    "publishers",
}
_REGION_SEGMENT = re.compile(r"^[a-z]{2}(?:-gov)?-[a-z]+-\d$")
_DATE_SUFFIX = re.compile(r"(?:[-@](?:20\d\d-?\d\d-?\d\d|\d{4}|latest|v\d+(?::\d+)?))+$")
# Bedrock model ids, `anthropic.claude-...`, with a cross-region inference profile in front
_BEDROCK_PREFIX = re.compile(
    r"^(?:(?:[a-z]{2}|apac|global|us-gov)\.)?(?:anthropic|meta|mistral|amazon|cohere)\."
)


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
class Rates:
    """What each kind of token costs (USD per million) in a request whose input tokens, cache
    reads and writes included, are from `min_input` to `max_input`: one price band."""

    min_input: int
    max_input: int
    input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal

    def cost(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_input_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> Decimal:
        """Exact USD: `input_tokens` includes the cache reads and writes, `output_tokens` the
        reasoning tokens; each part is priced once, at its own price."""
        fresh = input_tokens - cached_input_tokens - cache_write_input_tokens
        return (
            Decimal(fresh) * self.input
            + Decimal(cached_input_tokens) * self.cached_input
            + Decimal(cache_write_input_tokens) * self.cache_write
            + Decimal(output_tokens - reasoning_tokens) * self.output
            + Decimal(reasoning_tokens) * self.reasoning
        ) / MILLION


# the bounds of the price bands, beyond any token count the ledger accepts (10^15)
MIN_INPUT = -(2**62)
MAX_INPUT = 2**62


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Long-context prices: a request whose input is above `above_input_tokens` is billed
    wholly at these. A cache price left out is the entry's own."""

    above_input_tokens: int
    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "above_input_tokens": self.above_input_tokens,
            "input": self.input,
            "output": self.output,
            "cached_input": self.cached_input,
            "cache_write": self.cache_write,
        }


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens. `cached_input`, `cache_write` and `reasoning` are None where
    the provider does not price them apart (they are then billed as input, input and output);
    `tiers` are the long-context prices, by ascending threshold."""

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
    cache_write: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()

    @property
    def effective_cached_input(self) -> Decimal:
        return self.input if self.cached_input is None else self.cached_input

    @property
    def effective_cache_write(self) -> Decimal:
        """A cache write where the provider bills none apart is an ordinary input token."""
        return self.input if self.cache_write is None else self.cache_write

    @property
    def reasoning_model(self) -> bool:
        """A reasoning model, as the catalog marks one: an entry with its own reasoning price."""
        return self.reasoning is not None

    @property
    def effective_reasoning(self) -> Decimal:
        """What a reasoning token costs here: the reasoning price of a reasoning model; on any
        other model the same tokens are billed as output tokens."""
        return self.output if self.reasoning is None else self.reasoning

    def bands(self) -> tuple[Rates, ...]:
        """The price bands by request size, covering every input count once: the base prices
        up to the first tier's threshold, then each tier up to the next one's."""
        bounds = [tier.above_input_tokens for tier in self.tiers]
        # a reasoning price that is the output price follows the tier's output price
        own_reasoning = self.reasoning is not None and self.reasoning != self.output
        bands = [
            Rates(
                MIN_INPUT,
                bounds[0] if bounds else MAX_INPUT,
                self.input,
                self.effective_cached_input,
                self.effective_cache_write,
                self.output,
                self.effective_reasoning,
            )
        ]
        for index, tier in enumerate(self.tiers):
            upper = bounds[index + 1] if index + 1 < len(bounds) else MAX_INPUT
            bands.append(
                Rates(
                    tier.above_input_tokens + 1,
                    upper,
                    tier.input,
                    self.effective_cached_input if tier.cached_input is None else tier.cached_input,
                    self.effective_cache_write if tier.cache_write is None else tier.cache_write,
                    tier.output,
                    self.effective_reasoning if own_reasoning else tier.output,
                )
            )
        return tuple(bands)

    def rates_for(self, input_tokens: int) -> Rates:
        """The band one request with `input_tokens` input tokens is billed in."""
        return next(
            band for band in self.bands() if band.min_input <= input_tokens <= band.max_input
        )

    def cost(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_input_tokens: int = 0,
        reasoning_tokens: int = 0,
        batch: bool = False,
    ) -> Decimal:
        """Exact USD for a mix of calls at the base prices (a sum of calls has no one size to
        pick a long-context tier by; `request_cost` prices one call)."""
        total = self.bands()[0].cost(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            cache_write_input_tokens=cache_write_input_tokens,
            reasoning_tokens=reasoning_tokens,
        )
        return total * (1 - self.batch_discount) if batch else total

    def request_cost(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        cache_write_input_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> Decimal:
        """Exact USD for one call, in the price band its input size falls in."""
        return self.rates_for(input_tokens).cost(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            cache_write_input_tokens=cache_write_input_tokens,
            reasoning_tokens=reasoning_tokens,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "kind": self.kind,
            "tier": self.tier,
            "input": self.input,
            "cached_input": self.cached_input,
            "cache_write": self.cache_write,
            "output": self.output,
            "reasoning": self.reasoning,
            "batch_discount": self.batch_discount,
            "tiers": [tier.to_dict() for tier in self.tiers],
            "aliases": list(self.aliases),
            "source": self.source,
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
# the most tokens of one kind the ledger accepts in one call
MAX_TOKENS = 10**15


def _decimal(value: Any, what: str, *, optional: bool = False) -> Decimal | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise BadRequest(f"{what}: expected a number, got {_shown(value)}", code="invalid_price")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise BadRequest(
            f"{what}: expected a number, got {_shown(value)}", code="invalid_price"
        ) from None
    if not number.is_finite() or number < 0 or number > MAX_PRICE_PER_MILLION:
        raise BadRequest(
            f"{what}: expected a number from 0 to {MAX_PRICE_PER_MILLION:,} (USD "
            f"per million tokens), got {_shown(value)}",
            code="invalid_price",
        )
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
        raise BadRequest(
            f"{what}.{key}: expected a string, got {_shown(value)}", code="invalid_price"
        )
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
        raise BadRequest(f"{label}.aliases: expected a list of model names", code="invalid_price")
    if tier not in TIER_RANK or kind not in KINDS:
        raise BadRequest(
            f"price entry {label}: tier must be small, mid or frontier and kind chat or embedding",
            code="invalid_price",
        )
    discount = _decimal(entry.get("batch_discount", 0), f"{label}.batch_discount")
    assert discount is not None
    if discount > 1:
        raise BadRequest(
            f"{label}.batch_discount: a fraction between 0 and 1", code="invalid_price"
        )
    input_price = _decimal(entry.get("input"), f"{label}.input")
    output_price = _decimal(entry.get("output"), f"{label}.output")
    assert input_price is not None and output_price is not None
    return ModelPrice(
        id=model_id,
        provider=normalize_provider(provider),
        input=input_price,
        output=output_price,
        cached_input=_decimal(entry.get("cached_input"), f"{label}.cached_input", optional=True),
        reasoning=_decimal(entry.get("reasoning"), f"{label}.reasoning", optional=True),
        cache_write=_decimal(entry.get("cache_write"), f"{label}.cache_write", optional=True),
        tiers=_tiers(entry.get("tiers"), label),
        batch_discount=discount,
        tier=cast(Tier, tier),  # checked against TIER_RANK and KINDS above
        kind=cast(Kind, kind),
        aliases=tuple(aliases),
        source=source,
    )


MAX_TIERS = 8


def _tiers(value: Any, label: str) -> tuple[PriceTier, ...]:
    """`tiers`: long-context prices by strictly ascending `above_input_tokens`."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or len(value) > MAX_TIERS:
        raise BadRequest(
            f"{label}.tiers: expected a list of at most {MAX_TIERS} price tiers",
            code="invalid_price",
        )
    tiers: list[PriceTier] = []
    for index, item in enumerate(value):
        what = f"{label}.tiers[{index}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{what}: expected an object", code="invalid_price")
        above = item.get("above_input_tokens")
        lowest = tiers[-1].above_input_tokens + 1 if tiers else 1
        if (
            isinstance(above, bool)
            or not isinstance(above, int)
            or not (lowest <= above < MAX_TOKENS)
        ):
            raise BadRequest(
                f"{what}.above_input_tokens: expected a whole number of tokens "
                f"from {lowest:,}, above the tier before, got {_shown(above)}",
                code="invalid_price",
            )
        input_price = _decimal(item.get("input"), f"{what}.input")
        output_price = _decimal(item.get("output"), f"{what}.output")
        assert input_price is not None and output_price is not None
        tiers.append(
            PriceTier(
                above,
                input_price,
                output_price,
                _decimal(item.get("cached_input"), f"{what}.cached_input", optional=True),
                _decimal(item.get("cache_write"), f"{what}.cache_write", optional=True),
            )
        )
    return tuple(tiers)


def _name_candidates(model: str) -> list[str]:
    """The spellings a model name is looked up under, most literal first."""
    key = model.strip().lower()
    candidates = [key]
    segments = key.split("/")
    while len(segments) > 1 and (
        segments[0] in _PREFIX_SEGMENTS or _REGION_SEGMENT.match(segments[0])
    ):
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
    def load(cls, path: Path | None = None, *, extra_file: Path | None = None) -> PriceCatalog:
        """The packaged catalog (or `path`), then the entries of `extra_file` on top."""
        if path is None:
            text = resources.files("apex.analytics").joinpath("data/prices.json").read_text()
        else:
            text = Path(path).read_text()
        document = json.loads(text)
        catalog = cls(
            version=str(document["version"]),
            as_of=str(document["as_of"]),
            models=tuple(price_from_dict(entry, source="catalog") for entry in document["models"]),
        )
        if extra_file is not None:
            extra = json.loads(Path(extra_file).read_text())
            if looks_like_litellm_prices(extra):
                entries = [catalog.inherited(entry) for entry in catalog_entries(extra)]
            else:
                entries = extra["models"] if isinstance(extra, dict) else extra
            catalog = catalog.with_overrides(
                price_from_dict(entry, source="file") for entry in entries
            )
        return catalog

    def inherited(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A price file's entry with the capability tier of the catalog model it names, and the
        aliases of the entry it replaces, when it has none of its own (a LiteLLM price map has
        neither)."""
        name = str(entry.get("id", ""))
        known = self.resolve(name, str(entry.get("provider") or ""))
        if known is None:
            return entry
        aliases = list(known.aliases) if known.id.lower() == name.lower() else []
        return {"tier": known.tier, "aliases": aliases, **entry}

    def with_overrides(self, overrides: Iterable[ModelPrice]) -> PriceCatalog:
        """A catalog where each override replaces the entry of the same provider and id."""
        replaced = {(price.provider, price.id.lower()): price for price in overrides}
        if not replaced:
            return self
        kept = [
            price for price in self.models if (price.provider, price.id.lower()) not in replaced
        ]
        return PriceCatalog(
            version=self.version, as_of=self.as_of, models=(*replaced.values(), *kept)
        )

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
            raise NotFound(
                f"No price is known for model {model!r}.",
                code="unknown_model",
                details={"model": model, "provider": provider or ""},
            )
        return found

    def cheaper_alternatives(
        self,
        model: str,
        provider: str | None = None,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int = 0,
        reasoning_tokens: int = 0,
        min_tier: Tier | None = None,
        same_provider: bool = False,
        limit: int = 5,
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
            return price.cost(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=cached_input_tokens,
                reasoning_tokens=reasoning_tokens,
            )

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
