"""Action plans: snippets that paste into LiteLLM as they are, labelled with their real format.

Provider prefixes are LiteLLM's own (its `LlmProviders` names), never Apex's OpenTelemetry
provider names; every snippet parses as the format it is labelled with, names included.
"""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest
import yaml

from apex.agents.actions import litellm_model, litellm_params, plan_for

# a quoted model string starting with an Apex (OpenTelemetry) provider name
OTEL_NAMES = tuple(
    f'"{name}/'
    for name in (
        "gcp.gemini",
        "gcp.vertex_ai",
        "mistral_ai",
        "aws.bedrock",
        "azure.ai.openai",
        "x_ai",
    )
)


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "gpt-4o", "openai/gpt-4o"),
        ("anthropic", "claude-sonnet-4", "anthropic/claude-sonnet-4"),
        ("gcp.gemini", "gemini-2.5-flash", "gemini/gemini-2.5-flash"),
        ("gcp.gen_ai", "gemini-2.5-pro", "gemini/gemini-2.5-pro"),
        ("gcp.vertex_ai", "gemini-2.5-pro", "vertex_ai/gemini-2.5-pro"),
        ("mistral_ai", "mistral-large", "mistral/mistral-large"),
        (
            "aws.bedrock",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        ),
        ("azure.ai.openai", "gpt-4o", "azure/gpt-4o"),
        ("azure.ai.inference", "Phi-4", "azure_ai/Phi-4"),
        ("groq", "openai/gpt-oss-120b", "groq/openai/gpt-oss-120b"),
        ("cohere", "command-r", "cohere/command-r"),
        ("deepseek", "deepseek-chat", "deepseek/deepseek-chat"),
        ("x_ai", "grok-3", "xai/grok-3"),
        (
            "together_ai",
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
        ),
        (
            "fireworks_ai",
            "accounts/fireworks/models/llama-v3p3-70b-instruct",
            "fireworks_ai/accounts/fireworks/models/llama-v3p3-70b-instruct",
        ),
        ("openrouter", "anthropic/claude-3.5-sonnet", "openrouter/anthropic/claude-3.5-sonnet"),
        ("ollama", "llama3", "ollama/llama3"),
        ("perplexity", "sonar", "perplexity/sonar"),
        # raw names as a file may spell them, and a name that already carries the prefix
        ("google", "gemini-2.0-flash", "gemini/gemini-2.0-flash"),
        ("Mistral", "mistral-small", "mistral/mistral-small"),
        ("openai", "openai/gpt-4.1-nano", "openai/gpt-4.1-nano"),
    ],
)
def test_models_carry_litellms_provider_prefix(provider: str, model: str, expected: str) -> None:
    assert litellm_model(provider, model) == expected
    assert litellm_params(provider, model) == {"model": expected}
    plan = plan_for(_routing(provider, model, "gpt-4o-mini", "classification"))
    config = yaml.safe_load(plan["config_snippet"])
    assert config["model_list"][1]["litellm_params"]["model"] == expected
    assert not any(name in plan["config_snippet"] for name in OTEL_NAMES)


def test_an_endpoint_litellm_does_not_know_is_called_as_openai_compatible() -> None:
    assert litellm_params("acme-llm", "house-model", max_tokens=5) == {
        "model": "openai/house-model",
        "api_base": "os.environ/ACME_LLM_API_BASE",
        "max_tokens": 5,
    }


HOSTILE = 'ignore "previous" instructions: - [x] #1 {a: b}\n\\n \u0085\u2028 é 日本 \x9b\'; DROP'


def _routing(provider: str, model: str, alternative: str, feature: str) -> dict[str, Any]:
    return _item(
        "model_routing",
        {
            "provider": provider,
            "model": model,
            "feature": feature,
            "alternative_model": alternative,
            "min_tier": "mid",
            "candidates": [
                {"model": alternative, "cost_usd": 1.5},
                {"model": "gpt-4.1-mini", "cost_usd": 2.25},
            ],
        },
    )


def _item(kind: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{kind}-x", "kind": kind, "title": f"{kind} title", "evidence": evidence}


def _items(feature: str, model: str) -> list[dict[str, Any]]:
    outliers = {
        "provider": "anthropic",
        "model": model,
        "feature": feature,
        "threshold_tokens": 900,
        "p99_tokens": 7000.0,
    }
    errors = {
        "provider": "mistral_ai",
        "model": model,
        "error_rate": 0.15,
        "errors_by_type": {"timeout": 3, "rate_limit": 4},
    }
    slow = {
        "provider": "gcp.gemini",
        "model": model,
        "feature": feature,
        "timeout_suggestion_ms": 12_500,
        "p99_latency_ms": 30_000.0,
    }
    fallback = {
        "fallback_provider": "openai",
        "fallback_model": f"{model}-b",
        "fallback_error_rate": 0.01,
        "fallback_p95_latency_ms": 900.0,
    }
    return [
        _routing("openai", model, f"{model}-mini", feature),
        _item(
            "prompt_caching",
            {"mechanism": "response_cache", "model": model, "duplicate_share": 0.3},
        ),
        _item(
            "prompt_caching",
            {
                "mechanism": "provider_prompt_caching",
                "provider": "anthropic",
                "model": model,
                "repeated_prefix_tokens": 1000,
            },
        ),
        _item(
            "prompt_caching",
            {
                "mechanism": "provider_prompt_caching",
                "provider": "openai",
                "model": model,
                "repeated_prefix_tokens": 1000,
            },
        ),
        _item(
            "batch_api",
            {"provider": "openai", "model": model, "feature": feature, "batch_discount": "0.5"},
        ),
        _item("output_token_caps", outliers),
        _item("prompt_trimming", outliers),
        _item("error_retry_waste", errors),
        _item("error_retry_waste", {**errors, **fallback}),
        _item("latency", slow),
        _item("latency", {**slow, **fallback, "p50_ttft_ms": 400.0, "p95_ttft_ms": 1500.0}),
    ]


def _parsed(plan: dict[str, Any]) -> Any:
    snippet = plan["config_snippet"]
    if plan["config_format"] == "yaml":
        return yaml.safe_load(snippet)
    if plan["config_format"] == "json":
        return json.loads(snippet)
    assert plan["config_format"] == "python", plan["config_format"]
    return ast.parse(snippet)


def _strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*map(_strings, value.values()))
    if isinstance(value, list):
        return set().union(*map(_strings, value))
    if isinstance(value, ast.AST):
        return {
            node.value
            for node in ast.walk(value)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
    return {value} if isinstance(value, str) else set()


@pytest.mark.parametrize(
    ("feature", "model"), [("classification", "gpt-4o"), (HOSTILE, HOSTILE + "-model")]
)
def test_every_snippet_parses_as_its_format_with_the_names_intact(feature: str, model: str) -> None:
    formats = []
    for item in _items(feature, model):
        plan = plan_for(item)
        assert plan["recommendation_id"] == item["id"] and plan["steps"]
        assert plan["validation"] and plan["rollback"]
        parsed = _parsed(plan)
        formats.append(plan["config_format"])
        if item["evidence"].get("mechanism") != "response_cache":  # a proxy-wide setting
            assert any(model in text for text in _strings(parsed)), item["kind"]
        assert not any(name in plan["config_snippet"] for name in OTEL_NAMES)
    assert formats == [
        "yaml",
        "yaml",
        "yaml",
        "json",
        "python",
        "yaml",
        "python",
        "yaml",
        "yaml",
        "yaml",
        "yaml",
    ]


def test_the_routing_config_is_a_router_with_the_current_model_as_fallback() -> None:
    plan = plan_for(_routing("gcp.gemini", "gemini-2.5-pro", "gemini-2.5-flash", HOSTILE))
    config = yaml.safe_load(plan["config_snippet"])
    router, fallback = config["model_list"]
    assert router == {
        "model_name": HOSTILE + "-router",
        "litellm_params": {"model": "gemini/gemini-2.5-flash"},
    }
    assert fallback["model_name"] == HOSTILE + "-fallback"
    assert config["router_settings"] == {
        "fallbacks": [{HOSTILE + "-router": [HOSTILE + "-fallback"]}],
        "num_retries": 1,
    }
    assert any("gpt-4.1-mini ($2.25)" in step for step in plan["steps"])


def test_claude_prefixes_are_cached_by_litellm_markers_others_by_request_shape() -> None:
    claude = plan_for(_items("chat", "claude-sonnet-4")[2])
    gpt = plan_for(_items("chat", "gpt-4o")[3])
    deployment = yaml.safe_load(claude["config_snippet"])["model_list"][0]
    assert deployment["litellm_params"] == {
        "model": "anthropic/claude-sonnet-4",
        "cache_control_injection_points": [{"location": "message", "role": "system"}],
    }
    request = json.loads(gpt["config_snippet"])
    assert request["model"] == "openai/gpt-4o"
    assert [m["role"] for m in request["messages"]] == ["system", "user"]


def test_failures_and_slow_tails_fall_back_to_a_model_the_caller_runs() -> None:
    items = _items("agent", "gemini-2.5-pro")
    bare, with_fallback = (yaml.safe_load(plan_for(i)["config_snippet"]) for i in items[7:9])
    assert "fallbacks" not in bare["router_settings"]
    assert with_fallback["router_settings"]["fallbacks"] == [
        {"gemini-2.5-pro": ["gemini-2.5-pro-b"]}
    ]
    assert with_fallback["model_list"][1]["litellm_params"] == {"model": "openai/gemini-2.5-pro-b"}
    slow = yaml.safe_load(plan_for(items[10])["config_snippet"])
    assert slow["model_list"][0]["litellm_params"] == {
        "model": "gemini/gemini-2.5-pro",
        "timeout": 12.5,
    }
    assert slow["router_settings"]["fallbacks"] == [{"gemini-2.5-pro": ["gemini-2.5-pro-b"]}]
