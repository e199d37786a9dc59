"""Cache-write and long-context prices, in the packaged catalog, in a user's own prices and in
a LiteLLM `model_prices_and_context_window.json` given as `APEX_PRICES_FILE`."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest

from apex.analytics.normalize import LINE, Normalizer
from apex.analytics.pricing import PriceCatalog, price_from_dict
from apex.errors import BadRequest

# per token, as LiteLLM writes them
LITELLM_PRICES = {
    "sample_spec": {
        "max_tokens": "set to max_output_tokens",
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
        "litellm_provider": "one of the providers",
        "mode": "one of chat, embedding, completion, image_generation",
    },
    "claude-sonnet-4-20250514": {
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_read_input_token_cost": 3e-07,
        "input_cost_per_token_above_200k_tokens": 6e-06,
        "output_cost_per_token_above_200k_tokens": 2.25e-05,
        "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
        "cache_read_input_token_cost_above_200k_tokens": 6e-07,
        "input_cost_per_token_batches": 1.5e-06,
        "output_cost_per_token_batches": 7.5e-06,
        "litellm_provider": "anthropic",
        "mode": "chat",
    },
    "vertex_ai/gemini-2.5-pro": {
        "input_cost_per_token": 1.25e-06,
        "output_cost_per_token": 1e-05,
        "input_cost_per_token_above_200k_tokens": 2.5e-06,
        "output_cost_per_token_above_200k_tokens": 1.5e-05,
        "output_cost_per_reasoning_token": 1e-05,
        "litellm_provider": "vertex_ai-language-models",
        "mode": "chat",
    },
    "house/llm-7b": {
        "input_cost_per_token": 2e-07,
        "output_cost_per_token": 4e-07,
        "litellm_provider": "text-completion-openai",
        "mode": "completion",
    },
    "text-embedding-3-small": {
        "input_cost_per_token": 2e-08,
        "output_cost_per_token": 0.0,
        "litellm_provider": "openai",
        "mode": "embedding",
    },
    "dall-e-3": {
        "output_cost_per_image": 0.04,
        "litellm_provider": "openai",
        "mode": "image_generation",
    },
    "whisper-1": {
        "input_cost_per_second": 0.0001,
        "litellm_provider": "openai",
        "mode": "audio_transcription",
    },
}


@pytest.fixture(scope="module")
def litellm_catalog(tmp_path_factory: pytest.TempPathFactory) -> PriceCatalog:
    path = tmp_path_factory.mktemp("prices") / "model_prices_and_context_window.json"
    path.write_text(json.dumps(LITELLM_PRICES))
    return PriceCatalog.load(extra_file=path)


def test_a_litellm_price_map_is_read_per_million_with_cache_tier_and_batch_prices(
    litellm_catalog: PriceCatalog,
) -> None:
    sonnet = litellm_catalog.resolve("claude-sonnet-4-20250514", "anthropic")
    assert sonnet is not None and sonnet.source == "file"
    assert (sonnet.input, sonnet.cached_input, sonnet.cache_write, sonnet.output) == (
        Decimal("3"),
        Decimal("0.3"),
        Decimal("3.75"),
        Decimal("15"),
    )
    assert sonnet.batch_discount == Decimal("0.5")
    assert sonnet.tier == "frontier"  # the capability of the catalog model it names
    assert [
        (t.above_input_tokens, t.input, t.cached_input, t.cache_write, t.output)
        for t in sonnet.tiers
    ] == [(200_000, Decimal("6"), Decimal("0.6"), Decimal("7.5"), Decimal("22.5"))]
    gemini = litellm_catalog.resolve("vertex_ai/gemini-2.5-pro")
    assert gemini is not None and gemini.provider == "gcp.vertex_ai"
    assert (gemini.reasoning, gemini.tiers[0].output) == (Decimal("10"), Decimal("15"))
    # above 200,000 input tokens its thinking tokens cost the tier's output price:
    # 300,000 x 2.5 + 2,000 x 15 = 780,000 micro-dollars
    assert gemini.request_cost(
        input_tokens=300_000, output_tokens=2_000, reasoning_tokens=1_500
    ) == Decimal("0.78")
    completion = litellm_catalog.resolve("house/llm-7b")
    assert completion is not None and completion.provider == "openai"
    embedding = litellm_catalog.resolve("text-embedding-3-small", "openai")
    assert embedding is not None and (embedding.kind, embedding.input) == (
        "embedding",
        Decimal("0.02"),
    )


@pytest.mark.parametrize("name", ["dall-e-3", "whisper-1", "sample_spec"])
def test_entries_not_billed_by_the_token_are_left_out(
    litellm_catalog: PriceCatalog, name: str
) -> None:
    assert all(price.id != name for price in litellm_catalog.models)


def test_a_litellm_price_map_prices_rows_in_their_tier(litellm_catalog: PriceCatalog) -> None:
    normalizer = Normalizer(litellm_catalog.resolver(), threads=1, memory_limit_mb=128)
    rows = [
        ("claude-sonnet-4-20250514", "250000", "100000", "50000", "1000"),
        ("claude-sonnet-4-20250514", "26000", "20000", "5000", "500"),
    ]
    table = pa.table(
        {
            LINE: [2, 3],
            "timestamp": ["2024-05-01T10:00:00Z"] * 2,
            **{
                name: [row[index] for row in rows]
                for index, name in enumerate(
                    (
                        "model",
                        "input_tokens",
                        "cached_input_tokens",
                        "cache_write_input_tokens",
                        "output_tokens",
                    )
                )
            },
        }
    )
    try:
        result = normalizer.normalize(table, tenant_id="t", upload_id="u")
    finally:
        normalizer.close()
    assert result.errors == []
    # 100,000 x 6 + 100,000 x 0.6 + 50,000 x 7.5 + 1,000 x 22.5 = 1,057,500 micro-dollars;
    # 1,000 x 3 + 20,000 x 0.3 + 5,000 x 3.75 + 500 x 15 = 35,250
    assert result.rows.column("cost_usd").to_pylist() == [Decimal("1.0575"), Decimal("0.03525")]


def test_the_packaged_catalog_carries_cache_write_and_tier_prices_with_its_date() -> None:
    document = json.loads(
        resources.files("apex.analytics").joinpath("data/prices.json").read_text()
    )
    assert document["as_of"] and "cache_write" in document["notes"]
    entries = {entry["id"]: entry for entry in document["models"]}
    assert all("cache_write" in entry for entry in document["models"])
    assert entries["claude-sonnet-4"]["cache_write"] == "3.75"
    assert entries["gpt-4o"]["cache_write"] is None
    assert entries["claude-sonnet-4"]["tiers"][0]["above_input_tokens"] == 200_000
    assert entries["gemini-2.5-pro"]["tiers"][0]["input"] == "2.50"


# (input, cache read, cache write, output, reasoning) -> USD, at claude-sonnet-4's prices
@pytest.mark.parametrize(
    ("tokens", "cost"),
    [
        ((1_000, 0, 0, 0, 0), "0.003"),
        ((26_000, 20_000, 5_000, 500, 0), "0.03525"),
        ((200_000, 0, 0, 1_000, 0), "0.615"),
        ((200_001, 0, 0, 1_000, 0), "1.222506"),
        ((250_000, 100_000, 50_000, 1_000, 400), "1.0575"),
    ],
)
def test_one_request_is_priced_in_its_band(tokens: tuple[int, ...], cost: str) -> None:
    price = PriceCatalog.load().price("claude-sonnet-4", "anthropic")
    inputs, cached, written, output, reasoning = tokens
    assert price.request_cost(
        input_tokens=inputs,
        cached_input_tokens=cached,
        cache_write_input_tokens=written,
        output_tokens=output,
        reasoning_tokens=reasoning,
    ) == Decimal(cost)


@pytest.mark.parametrize(
    "tiers",
    [
        "above 200k",
        [{"above_input_tokens": 0, "input": 1, "output": 1}],
        [
            {"above_input_tokens": 1000, "input": 1, "output": 1},
            {"above_input_tokens": 1000, "input": 2, "output": 2},
        ],
        [{"above_input_tokens": True, "input": 1, "output": 1}],
        [{"above_input_tokens": 1000, "input": -1, "output": 1}],
        [{"above_input_tokens": 1000, "input": 1}],
        [{"above_input_tokens": 10**15, "input": 1, "output": 1}],
        [{"above_input_tokens": 1000 * n, "input": 1, "output": 1} for n in range(1, 10)],
        ["tier"],
    ],
)
def test_bad_tiers_are_refused(tiers: object) -> None:
    with pytest.raises(BadRequest) as raised:
        price_from_dict({"id": "m", "input": 1, "output": 1, "tiers": tiers}, source="user")
    assert raised.value.code == "invalid_price"


def test_a_litellm_price_map_with_a_price_that_is_no_number_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps({"gpt-4o": {"input_cost_per_token": "cheap", "output_cost_per_token": 1e-05}})
    )
    with pytest.raises(BadRequest):
        PriceCatalog.load(extra_file=path)
