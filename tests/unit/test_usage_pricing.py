"""The price catalog: the data file, conservative name matching, costs, alternatives, overrides."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from apex.analytics.pricing import (
    MAX_PRICE_PER_MILLION,
    ModelPrice,
    PriceCatalog,
    Tier,
    normalize_provider,
    price_from_dict,
    tier_floor,
)
from apex.errors import BadRequest, NotFound


@pytest.fixture(scope="module")
def catalog() -> PriceCatalog:
    return PriceCatalog.load()


def test_the_data_file_is_versioned_and_covers_the_main_providers(catalog: PriceCatalog) -> None:
    document = json.loads(
        resources.files("apex.analytics").joinpath("data/prices.json").read_text()
    )
    assert document["as_of"] == catalog.as_of and document["version"] == catalog.version
    providers = {price.provider for price in catalog.models}
    assert {
        "openai",
        "anthropic",
        "gcp.gemini",
        "mistral_ai",
        "together_ai",
        "groq",
        "fireworks_ai",
        "deepseek",
    } <= providers
    for price in catalog.models:
        assert price.input >= 0 and price.output >= 0 and 0 <= price.batch_discount <= 1
        if price.cached_input is not None:
            assert price.cached_input <= price.input, price.id
    ids = [(price.provider, price.id.lower()) for price in catalog.models]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("name", "provider", "expected"),
    [
        ("gpt-4o-2024-08-06", None, ("openai", "gpt-4o")),
        ("GPT-4o-Mini", None, ("openai", "gpt-4o-mini")),
        ("openai/gpt-4.1-nano", None, ("openai", "gpt-4.1-nano")),
        ("claude-3-5-sonnet-20241022", "anthropic", ("anthropic", "claude-3-5-sonnet")),
        (
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "bedrock",
            ("anthropic", "claude-3-5-sonnet"),
        ),
        ("claude-3-5-sonnet@20240620", "vertex_ai", ("anthropic", "claude-3-5-sonnet")),
        ("models/gemini-1.5-pro-002", None, ("gcp.gemini", "gemini-1.5-pro")),
        ("mistral-large-latest", "mistral", ("mistral_ai", "mistral-large")),
        ("gpt-4o", "azure", ("openai", "gpt-4o")),
        (
            "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
            None,
            ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ),
        ("llama-3.3-70b-versatile", "groq", ("groq", "llama-3.3-70b-versatile")),
    ],
)
def test_names_resolve_conservatively(
    catalog: PriceCatalog, name: str, provider: str | None, expected: tuple[str, str]
) -> None:
    price = catalog.resolve(name, provider)
    assert price is not None and (price.provider, price.id) == expected


@pytest.mark.parametrize("name", ["gpt-4o-audio-preview", "my-finetune", "", "gpt", "claude"])
def test_unknown_names_are_not_guessed(catalog: PriceCatalog, name: str) -> None:
    assert catalog.resolve(name) is None
    with pytest.raises(NotFound):
        catalog.price(name or "x-unknown")


def test_cost_prices_cached_and_reasoning_tokens_and_batch(catalog: PriceCatalog) -> None:
    price = catalog.price("claude-sonnet-4")
    cost = price.cost(
        input_tokens=2_000_000, cached_input_tokens=1_000_000, output_tokens=1_000_000
    )
    assert cost == Decimal("3.00") + Decimal("0.30") + Decimal("15.00")
    assert price.cost(input_tokens=1_000_000, output_tokens=0, batch=True) == Decimal("1.5")
    custom = ModelPrice(
        id="r", provider="x", input=Decimal(1), output=Decimal(2), reasoning=Decimal(4)
    )
    assert custom.cost(
        input_tokens=0, output_tokens=3_000_000, reasoning_tokens=1_000_000
    ) == Decimal(8)


def test_cheaper_alternatives_are_cheaper_for_the_mix_and_of_the_same_kind(
    catalog: PriceCatalog,
) -> None:
    options = catalog.cheaper_alternatives(
        "gpt-4o", input_tokens=600, output_tokens=5, min_tier="mid", limit=50
    )
    assert options and all(o.alternative_cost < o.current_cost for o in options)
    assert all(o.model.kind == "chat" and o.model.tier in ("mid", "frontier") for o in options)
    assert [o.alternative_cost for o in options] == sorted(o.alternative_cost for o in options)
    same = catalog.cheaper_alternatives(
        "gpt-4o", input_tokens=600, output_tokens=5, same_provider=True
    )
    assert same and {o.model.provider for o in same} == {"openai"}
    embeddings = catalog.cheaper_alternatives(
        "text-embedding-3-large", input_tokens=1000, output_tokens=0
    )
    assert embeddings and {o.model.kind for o in embeddings} == {"embedding"}


def test_a_prices_file_extends_and_overrides(tmp_path: Path) -> None:
    extra = tmp_path / "prices.json"
    extra.write_text(
        json.dumps(
            {
                "models": [
                    {"id": "gpt-4o", "provider": "openai", "input": "2.00", "output": "8.00"},
                    {"id": "house-model", "provider": "internal", "input": 0.1, "output": 0.2},
                ]
            }
        )
    )
    catalog = PriceCatalog.load(extra_file=extra)
    assert catalog.price("gpt-4o").input == Decimal("2.00")
    assert catalog.price("gpt-4o").source == "file"
    assert catalog.price("house-model").output == Decimal("0.2")
    user = catalog.with_overrides(
        [
            price_from_dict(
                {"id": "gpt-4o", "provider": "openai", "input": 1, "output": 1}, source="user"
            )
        ]
    )
    assert user.price("gpt-4o-2024-08-06").source == "user"


@pytest.mark.parametrize(
    "entry",
    [
        {"id": "x", "input": -1, "output": 1},
        {"id": "x", "input": "abc", "output": 1},
        {"id": "x", "input": 1},
        {"id": "", "input": 1, "output": 1},
        {"id": "x", "input": 1, "output": 1, "batch_discount": 2},
        {"id": "x", "input": 1, "output": 1, "tier": "huge"},
        {"id": "x", "input": "NaN", "output": 1},
        # documents of any JSON shape reach here from PUT /api/usage/prices and the prices file
        {"id": "x", "input": 1, "output": 1, "tier": {"a": 1}},
        {"id": "x", "input": 1, "output": 1, "kind": ["chat"]},
        {"id": "x", "input": 1, "output": 1, "provider": ["openai"]},
        {"id": "x", "input": 1, "output": 1, "aliases": "x-latest"},
        {"id": "x", "input": 1, "output": 1, "aliases": [1, 2]},
        {"id": ["x"], "input": 1, "output": 1},
        {"id": "x", "input": {"usd": 1}, "output": 1},
        {"id": "x", "input": True, "output": 1},
        {"id": "x", "input": 1e308, "output": 1},
        {"id": "x", "input": "1000000.01", "output": 1},
        {"id": "m" * 5000, "input": -1, "output": 1},  # a hostile name is shortened in the message
        {"id": "m" * 5000, "input": 1, "output": 1, "tier": "huge"},
        {"id": "m" * 5000, "input": 1, "output": 1, "provider": 7},
    ],
)
def test_bad_price_entries_are_refused(entry: dict[str, object]) -> None:
    with pytest.raises(BadRequest) as refused:
        price_from_dict(entry, source="user")
    assert refused.value.code == "invalid_price" and len(refused.value.message) < 200


def test_the_highest_accepted_price_is_a_dollar_a_token() -> None:
    price = price_from_dict(
        {"id": "x", "input": "1000000", "output": 0, "aliases": ["y"]}, source="user"
    )
    assert price.input == MAX_PRICE_PER_MILLION and price.aliases == ("y",)


def test_provider_names_follow_opentelemetry() -> None:
    assert normalize_provider("Google") == "gcp.gemini"
    assert normalize_provider(" mistral ") == "mistral_ai"
    assert normalize_provider("") == "" and normalize_provider("acme") == "acme"


@pytest.mark.parametrize(
    ("tier", "allowed", "floor"),
    [
        ("frontier", "small", "mid"),
        ("frontier", "mid", "mid"),
        ("frontier", "frontier", "frontier"),
        ("mid", "small", "small"),
        ("mid", "mid", "mid"),
        ("small", "small", "small"),
    ],
)
def test_a_workload_goes_down_one_tier_at_most_and_never_below_its_signals(
    tier: Tier, allowed: Tier, floor: Tier
) -> None:
    assert tier_floor(tier, allowed) == floor


def test_cheaper_alternatives_keep_the_tier_floor(catalog: PriceCatalog) -> None:
    document = json.loads(
        resources.files("apex.analytics").joinpath("data/prices.json").read_text()
    )
    rank = {"small": 0, "mid": 1, "frontier": 2}

    def cost(entry: dict[str, str]) -> Decimal:
        return (600 * Decimal(entry["input"]) + 5 * Decimal(entry["output"])) / 1_000_000

    current = next(e for e in document["models"] if e["id"] == "gpt-4o")
    expected = sorted(
        (cost(e), e["id"])
        for e in document["models"]
        if e["provider"] == "openai"
        and e["kind"] == "chat"
        and rank[e["tier"]] >= rank["mid"]
        and cost(e) < cost(current)
    )
    options = catalog.cheaper_alternatives(
        "gpt-4o",
        "openai",
        input_tokens=600,
        output_tokens=5,
        min_tier=tier_floor("frontier"),
        same_provider=True,
        limit=50,
    )
    assert [(o.alternative_cost, o.model.id) for o in options] == expected
    cheapest_overall = min(
        (cost(e), e["id"])
        for e in document["models"]
        if e["provider"] == "openai" and e["kind"] == "chat"
    )
    assert cheapest_overall not in expected  # a small model is two tiers below gpt-4o


def test_reasoning_tokens_cost_the_reasoning_price_only_on_a_reasoning_model() -> None:
    def price(model_id: str, output: str, reasoning: str | None = None) -> ModelPrice:
        return ModelPrice(
            id=model_id,
            provider="acme",
            input=Decimal(1),
            output=Decimal(output),
            reasoning=None if reasoning is None else Decimal(reasoning),
        )

    catalog = PriceCatalog(
        version="t",
        as_of="2026-01-01",
        models=(
            price("thinker-large", "20", "30"),
            price("thinker-small", "4", "6"),
            price("plain-small", "5"),
        ),
    )
    options = {
        o.model.id: o
        for o in catalog.cheaper_alternatives(
            "thinker-large",
            input_tokens=1_000_000,
            output_tokens=3_000_000,
            reasoning_tokens=2_000_000,
        )
    }
    # 1M input at $1; 1M answer tokens at the output price; 2M reasoning tokens at the
    # reasoning price of a reasoning model, at the output price of any other model
    assert options["thinker-small"].current_cost == Decimal(1 + 20 + 60)
    assert options["thinker-small"].alternative_cost == Decimal(1 + 4 + 12)
    assert options["plain-small"].alternative_cost == Decimal(1 + 5 + 10)
    assert catalog.price("thinker-small").reasoning_model
    assert not catalog.price("plain-small").reasoning_model
