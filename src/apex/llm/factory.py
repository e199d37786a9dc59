"""Build the configured language model from Settings: the one place that reads the LLM settings.

`builtin` gives the deterministic engine alone. `openai` and `anthropic` give the provider adapter
under its guard, chained to the built-in engine, so a provider outage degrades the prose and the
classification, never a run. Build it once per process: the circuit breaker's state is shared by
every run, which is the point of having one. The provider SDKs are imported only when
configured: together they take over a second to import, which the default set-up never pays.
"""

from __future__ import annotations

from apex.config import Settings
from apex.config.settings import LlmProvider
from apex.llm.base import LanguageModel
from apex.llm.builtin import BuiltinModel
from apex.llm.fallback import FallbackModel
from apex.llm.provider import ProviderModel
from apex.llm.resilience import CircuitBreaker, ProviderGuard, ProviderRetryPolicy


class LlmConfigurationError(ValueError):
    """The LLM settings cannot work; the message names the variable to fix."""


def build_guard(settings: Settings) -> ProviderGuard:
    return ProviderGuard(
        timeout_s=settings.llm_timeout_s,
        retry=ProviderRetryPolicy(max_attempts=settings.llm_max_attempts),
        breaker=CircuitBreaker(
            failure_threshold=settings.llm_circuit_failure_threshold,
            reset_timeout_s=settings.llm_circuit_reset_s,
        ),
    )


def _provider_class(provider: LlmProvider) -> type[ProviderModel]:
    if provider is LlmProvider.OPENAI:
        from apex.llm.openai import OpenAIModel

        return OpenAIModel
    from apex.llm.anthropic import AnthropicModel

    return AnthropicModel


def build_language_model(settings: Settings) -> LanguageModel:
    if settings.llm_provider is LlmProvider.BUILTIN:
        return BuiltinModel()
    if not settings.llm_model:
        raise LlmConfigurationError(
            f"APEX_LLM_MODEL must name a model when APEX_LLM_PROVIDER={settings.llm_provider.value}"
        )
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    if api_key is None and settings.llm_base_url is None:
        raise LlmConfigurationError(
            f"APEX_LLM_API_KEY must be set for the hosted {settings.llm_provider.value} API "
            "(or APEX_LLM_BASE_URL must point at a server that needs none)"
        )
    provider = _provider_class(settings.llm_provider)(
        model_name=settings.llm_model,
        guard=build_guard(settings),  # type: ignore[call-arg]
        base_url=settings.llm_base_url,
        api_key=api_key,
    )
    return FallbackModel(provider, BuiltinModel())
