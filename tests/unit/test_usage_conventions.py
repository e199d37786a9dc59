"""Which sources count input tokens without their cache reads and writes (Anthropic's usage
object) and which with them (OpenAI, OpenTelemetry GenAI, LiteLLM, the ledger's own names)."""

from __future__ import annotations

import pytest

from apex.analytics.importers.fields import input_excludes_cache, match_fields


@pytest.mark.parametrize(
    ("names", "excluded"),
    [
        (
            [
                "usage.input_tokens",
                "usage.cache_read_input_tokens",
                "usage.cache_creation_input_tokens",
                "usage.output_tokens",
            ],
            True,
        ),
        (["input_tokens", "cache_creation_input_tokens", "output_tokens"], True),
        (["usage.prompt_tokens", "usage.prompt_tokens_details.cached_tokens"], False),
        (["usage.input_tokens", "usage.input_tokens_details.cached_tokens"], False),
        (
            [
                "gen_ai.usage.input_tokens",
                "gen_ai.usage.cache_read.input_tokens",
                "gen_ai.usage.cache_write.input_tokens",
            ],
            False,
        ),
        (["gen_ai.usage.input_tokens", "gen_ai.usage.cache_read_input_tokens"], False),
        (["prompt_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"], False),
        (["input_tokens", "cached_input_tokens", "cache_write_input_tokens"], False),
        (["input_tokens", "output_tokens"], False),
    ],
)
def test_the_input_convention_follows_the_source_names(names: list[str], excluded: bool) -> None:
    assert input_excludes_cache(match_fields(["timestamp", "model", *names])) is excluded


def test_an_opentelemetry_cache_name_does_not_stand_for_input_tokens() -> None:
    found = match_fields(
        ["gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens"]
    )
    assert found == {
        "cached_input_tokens": "gen_ai.usage.cache_read.input_tokens",
        "cache_write_input_tokens": "gen_ai.usage.cache_creation.input_tokens",
    }
