"""The configured language model is built from Settings, and misconfiguration names the variable."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apex.analytics.filters import OWN_CALLS_FEATURE
from apex.config import Settings
from apex.llm import BuiltinModel, FallbackModel, LanguageModel, LlmCallRecord, MeteredModel
from apex.llm.factory import LlmConfigurationError, build_language_model

MakeSettings = Callable[..., Settings]


def test_builtin_is_the_default(make_settings: MakeSettings) -> None:
    assert isinstance(build_language_model(make_settings()), BuiltinModel)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_provider_is_chained_to_the_builtin_engine(
    make_settings: MakeSettings, provider: str
) -> None:
    settings = make_settings(
        llm_provider=provider,
        llm_model="m",
        llm_api_key="k",
        llm_timeout_s=7,
        llm_max_attempts=4,
        llm_circuit_failure_threshold=9,
        llm_circuit_reset_s=11,
    )
    model = build_language_model(settings)
    assert isinstance(model, FallbackModel) and isinstance(model.fallback, BuiltinModel)
    assert (model.provider, model.model_name) == (provider, "m")
    guard = model.primary.guard  # type: ignore[attr-defined]
    assert guard.timeout_s == 7 and guard.retry.max_attempts == 4
    assert guard.breaker.failure_threshold == 9 and guard.breaker.reset_timeout_s == 11


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"llm_provider": "openai"}, "APEX_LLM_MODEL"),
        ({"llm_provider": "anthropic", "llm_model": "m"}, "APEX_LLM_API_KEY"),
    ],
)
def test_misconfiguration_names_the_variable(
    make_settings: MakeSettings, overrides: dict[str, str], variable: str
) -> None:
    with pytest.raises(LlmConfigurationError, match=variable):
        build_language_model(make_settings(**overrides))


def test_every_model_and_wrapper_satisfies_the_protocol(make_settings: MakeSettings) -> None:
    built = build_language_model(
        make_settings(llm_provider="openai", llm_model="m", llm_api_key="k")
    )
    assert isinstance(built, FallbackModel)

    async def recorder(record: LlmCallRecord) -> None:
        return None

    for model in (
        built,
        built.primary,
        built.fallback,
        MeteredModel(built, recorder, feature=OWN_CALLS_FEATURE),
    ):
        assert isinstance(model, LanguageModel)


def test_a_local_server_needs_no_key(make_settings: MakeSettings) -> None:
    settings = make_settings(
        llm_provider="openai", llm_model="llama3.1", llm_base_url="http://127.0.0.1:11434/v1"
    )
    assert isinstance(build_language_model(settings), FallbackModel)
