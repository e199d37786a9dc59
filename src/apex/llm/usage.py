"""Token usage of language-model calls, in one convention whatever the provider reports.

Convention (the OpenAI and OpenTelemetry GenAI one): `input_tokens` counts every prompt token,
cached ones included; `cached_input_tokens` says how many of them were read from the
provider's prompt cache and `cache_write_input_tokens` how many were written to it (billed at
the cache-write price); `output_tokens` counts every generated token, reasoning included, and
`reasoning_tokens` says how many of them were reasoning. Adapters convert to it (Anthropic reports
cache reads and writes apart from `input_tokens`), so cached and reasoning tokens can be priced
separately without being counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LlmUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0

    def __add__(self, other: LlmUsage) -> LlmUsage:
        return LlmUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_input_tokens=(
                self.cache_write_input_tokens + other.cache_write_input_tokens
            ),
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            requests=self.requests + other.requests,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
