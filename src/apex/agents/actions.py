"""The actions agent: a concrete change for each recommendation, with validation and rollback.

Model routing gets a LiteLLM router config, caching LiteLLM's cache settings or the request
shape the provider caches, batch traffic a batch job, and so on; each plan names what to
measure to validate it and how to undo it. Snippets paste as they are: LiteLLM configs use
LiteLLM's own provider prefixes (`litellm_model`), and every plan says its snippet's format in
`config_format` ("yaml", "json", "python" or "text"), which it parses as. Every name in a plan
comes from the recommendation's evidence (the caller's own rows), quoted as data in
YAML/JSON/Python strings, never as instructions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from apex.analytics.pricing import normalize_provider
from apex.execution.workflow import AgentScope

Plan = dict[str, Any]
ConfigFormat = Literal["yaml", "json", "python", "text"]

# Apex's provider names (OpenTelemetry GenAI) to the prefixes LiteLLM routes by.
LITELLM_PREFIXES: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "gemini",
    "gcp.gen_ai": "gemini",
    "gcp.vertex_ai": "vertex_ai",
    "mistral_ai": "mistral",
    "aws.bedrock": "bedrock",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure_ai",
    "groq": "groq",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "x_ai": "xai",
    "together_ai": "together_ai",
    "fireworks_ai": "fireworks_ai",
    "perplexity": "perplexity",
    "openrouter": "openrouter",
    "ollama": "ollama",
    "ibm.watsonx.ai": "watsonx",
}
# An endpoint LiteLLM has no prefix for is called as an OpenAI-compatible one.
COMPATIBLE_PREFIX = "openai"
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_LINE_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_NAME = re.compile(r"[^A-Z0-9]+")


def _q(value: Any) -> str:
    """A string literal that YAML, JSON and Python all read back as `value`."""
    text = json.dumps(str(value), ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _comment(text: str) -> str:
    """A one-line comment: a name with a line break in it must not end the comment."""
    return "# " + _LINE_BREAKING.sub(" ", text)


def litellm_prefix(provider: str) -> str | None:
    """LiteLLM's prefix for an Apex provider name, None when LiteLLM has none."""
    return LITELLM_PREFIXES.get(normalize_provider(provider))


def litellm_model(provider: str, model: str) -> str:
    """The `model` of a LiteLLM deployment: `prefix/model`, the model name kept as the caller's
    rows spell it (a name that already carries the prefix is left alone)."""
    prefix = litellm_prefix(provider) or COMPATIBLE_PREFIX
    return model if model.lower().startswith(prefix + "/") else f"{prefix}/{model}"


def litellm_params(provider: str, model: str, **params: Any) -> dict[str, Any]:
    """A deployment's `litellm_params`; an endpoint LiteLLM has no prefix for gets its base
    URL from an environment variable named after the provider."""
    found: dict[str, Any] = {"model": litellm_model(provider, model)}
    if litellm_prefix(provider) is None:
        env = _ENV_NAME.sub("_", provider.upper()).strip("_") or "OPENAI_COMPATIBLE"
        found["api_base"] = f"os.environ/{env}_API_BASE"
    return {**found, **params}


def _yaml_key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else _q(key)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return _q(value)


def yaml_lines(value: Any, indent: int = 0) -> list[str]:
    """Block-style YAML for mappings, lists and scalars (every string double-quoted)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines += [f"{pad}{_yaml_key(key)}:", *yaml_lines(item, indent + 2)]
            else:
                lines.append(f"{pad}{_yaml_key(key)}: {_yaml_scalar(item)}")
        return lines
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                inner = yaml_lines(item, indent + 2)
                lines += [f"{pad}- {inner[0].lstrip()}", *inner[1:]]
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}")
        return lines
    return [pad + _yaml_scalar(value)]


def _litellm_yaml(comment: str, config: dict[str, Any]) -> tuple[str, ConfigFormat]:
    return "\n".join([_comment(f"LiteLLM config.yaml: {comment}"), *yaml_lines(config)]), "yaml"


def _plan(
    steps: list[str], snippet: tuple[str, ConfigFormat], validation: str, rollback: str
) -> Plan:
    text, config_format = snippet
    return {
        "steps": steps,
        "config_snippet": text,
        "config_format": config_format,
        "validation": validation,
        "rollback": rollback,
    }


def _deployment(name: str, provider: str, model: str, **params: Any) -> dict[str, Any]:
    """One `model_list` entry."""
    return {"model_name": name, "litellm_params": litellm_params(provider, model, **params)}


def _routing(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    provider, model, alt = e["provider"], e["model"], e["alternative_model"]
    feature = e["feature"] or "untagged"
    router, fallback = f"{feature}-router", f"{feature}-fallback"
    others = [f"{c['model']} (${c['cost_usd']:,.2f})" for c in e.get("candidates", [])[1:]]
    steps = [
        f"Add the `{router}` deployment ({alt}) to your LiteLLM proxy.",
        f"Send 10% of `{feature}` traffic to it for a day (shadow or canary), then 100%.",
        f"Keep {model} as the fallback deployment for errors.",
    ]
    if others:
        steps.append(
            f"If {alt} falls short, the next candidates at or above the {e['min_tier']} "
            f"tier were {', '.join(others)} for the same calls."
        )
    return _plan(
        steps,
        _litellm_yaml(
            "a cheaper deployment for this feature, the current one as fallback",
            {
                "model_list": [
                    _deployment(router, provider, alt),
                    _deployment(fallback, provider, model),
                ],
                "router_settings": {"fallbacks": [{router: [fallback]}], "num_retries": 1},
            },
        ),
        f"Compare {alt} against {model} on a labelled sample of `{feature}` requests (accuracy "
        "within 1 point), and watch its error rate and p95 latency for a week; Apex shows the "
        "new spend by model after an upload.",
        f"Point `{feature}` back at the `{fallback}` model name ({model}); no data "
        "migration is involved.",
    )


def _caches_by_marker(provider: str, model: str) -> bool:
    """Claude models (on any host) cache only marked prefixes; OpenAI, DeepSeek, xAI and
    Gemini 2.5 cache identical prefixes on their own."""
    return litellm_prefix(provider) == "anthropic" or "claude" in model.lower()


def _caching(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    if e.get("mechanism") == "response_cache":
        return _plan(
            [
                f"Enable an exact-match response cache in front of {e['model']} (LiteLLM cache, "
                "or your own keyed by the prompt hash).",
                "Start with a 24 h TTL; bypass it for requests that must be fresh.",
            ],
            _litellm_yaml(
                "exact-match response cache",
                {
                    "litellm_settings": {
                        "cache": True,
                        "cache_params": {
                            "type": "redis",
                            "ttl": 86400,
                            "supported_call_types": ["completion", "acompletion"],
                        },
                    }
                },
            ),
            f"Cache hit rate should approach the duplicate share "
            f"({100 * e['duplicate_share']:.1f}%) and the model's request count fall by as "
            "much.",
            "Set `cache: false` (or bypass per request with `cache: {no-cache: true}`).",
        )
    provider, model = e["provider"], e["model"]
    steps = [
        f"Put the shared prefix first in every {model} prompt and keep it byte-identical "
        "(no timestamps or ids in it)."
    ]
    if _caches_by_marker(provider, model):
        steps.append("Let LiteLLM mark the system prompt cacheable (snippet).")
        snippet = _litellm_yaml(
            "cache the shared system prompt",
            {
                "model_list": [
                    _deployment(
                        model,
                        provider,
                        model,
                        cache_control_injection_points=[{"location": "message", "role": "system"}],
                    )
                ]
            },
        )
    else:
        steps.append(
            f"{model} caches identical prefixes by itself: send the shared part "
            "first, as in the request below."
        )
        snippet = (
            json.dumps(
                {
                    "model": litellm_model(provider, model),
                    "messages": [
                        {
                            "role": "system",
                            "content": "<the shared prefix, identical on every call>",
                        },
                        {"role": "user", "content": "<what changes from call to call>"},
                    ],
                },
                indent=2,
                ensure_ascii=False,
            ),
            "json",
        )
    return _plan(
        steps,
        snippet,
        f"`cached_input_tokens` should rise to about {e['repeated_prefix_tokens']:,} per period "
        "in your next usage export.",
        "Remove the cache marker; prompts are unchanged otherwise.",
    )


def _batch(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    provider = litellm_prefix(e["provider"]) or COMPATIBLE_PREFIX
    feature = e["feature"] or "off-hours"
    snippet = "\n".join(
        [
            _comment(
                f"Batch API through LiteLLM: the {feature} requests as one JSONL file, one job"
            ),
            "import json",
            "",
            "import litellm",
            "",
            f"MODEL = {_q(e['model'])}",
            f"PROVIDER = {_q(provider)}",
            "requests = []  # the chat messages of each call the job makes",
            "",
            'with open("batch.jsonl", "w") as lines:',
            "    for number, messages in enumerate(requests):",
            '        lines.write(json.dumps({"custom_id": f"row-{number}", "method": "POST",',
            '                                "url": "/v1/chat/completions",',
            '                                "body": {"model": MODEL, "messages": messages}})'
            ' + "\\n")',
            'with open("batch.jsonl", "rb") as upload:',
            '    batch_file = litellm.create_file(file=upload, purpose="batch",',
            "                                     custom_llm_provider=PROVIDER)",
            'job = litellm.create_batch(completion_window="24h", endpoint="/v1/chat/completions",',
            "                           input_file_id=batch_file.id, custom_llm_provider=PROVIDER)",
            "print(job.id)",
        ]
    )
    return _plan(
        [
            f"Collect the `{feature}` requests into a JSONL file instead of calling the API "
            "one by one.",
            "Submit it to the provider's batch endpoint and poll for the results.",
            "Write results back when the batch completes (within 24 h).",
        ],
        (snippet, "python"),
        f"The job's spend on {e['model']} should fall by the batch discount "
        f"({float(e['batch_discount']) * 100:.0f}%); check that every custom_id comes back.",
        "Switch the job back to direct calls; nothing else depends on the batch.",
    )


def _output_caps(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    feature = e["feature"] or "untagged"
    return _plan(
        [
            f"Set `max_tokens` to {e['threshold_tokens']} for `{feature}` calls on {e['model']}.",
            "Ask for the expected length in the prompt, so answers end on their own.",
        ],
        _litellm_yaml(
            f"{feature} calls capped at their p95 output",
            {
                "model_list": [
                    _deployment(
                        feature, e["provider"], e["model"], max_tokens=e["threshold_tokens"]
                    )
                ]
            },
        ),
        "Watch the share of answers that stop at the cap (finish_reason `length`); it should "
        "stay near 5%, and quality checks should hold.",
        "Remove the `max_tokens` setting.",
    )


def _trimming(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    feature = e["feature"] or "untagged"
    snippet = "\n".join(
        [
            _comment(
                f"Guard before each {feature} call: prompts above the group's p95 are trimmed first"
            ),
            "import litellm",
            "",
            f"MAX_INPUT_TOKENS = {int(e['threshold_tokens'])}",
            f"MODEL = {_q(litellm_model(e['provider'], e['model']))}",
            "",
            "",
            "def within_budget(messages: list[dict]) -> bool:",
            "    return litellm.token_counter(model=MODEL, messages=messages) <= MAX_INPUT_TOKENS",
        ]
    )
    return _plan(
        [
            f"Find what makes `{feature}` prompts grow past {e['threshold_tokens']:,} tokens "
            "(whole documents, long histories).",
            "Chunk or summarise the input, or retrieve only the relevant parts.",
            "Check `within_budget` before each call; split or trim an input that fails it.",
        ],
        (snippet, "python"),
        f"p99 input tokens of `{feature}` should fall from {e['p99_tokens']:,.0f} to near "
        f"{e['threshold_tokens']:,}; check the answers' accuracy on the trimmed inputs.",
        "Remove the guard; the full prompts are sent again.",
    )


def _with_fallback(e: Mapping[str, Any], **params: Any) -> dict[str, Any]:
    """The model's deployment, and the evidence's fallback model as its fallback if any."""
    deployments = [_deployment(e["model"], e["provider"], e["model"], **params)]
    settings: dict[str, Any] = {}
    if e.get("fallback_model"):
        deployments.append(
            _deployment(e["fallback_model"], e["fallback_provider"], e["fallback_model"])
        )
        settings["fallbacks"] = [{e["model"]: [e["fallback_model"]]}]
    return {"model_list": deployments, "router_settings": settings}


def _errors(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    kinds = ", ".join(f"{kind} {count}" for kind, count in e["errors_by_type"].items())
    config = _with_fallback(e)
    config["router_settings"].update(
        num_retries=2,
        retry_policy={"TimeoutErrorRetries": 1, "RateLimitErrorRetries": 2},
        allowed_fails=3,
        cooldown_time=30,
    )
    fallback = (
        f"Fall back to {e['fallback_model']}, which you already run and which fails "
        f"{100 * e['fallback_error_rate']:.1f}% of calls, instead of retrying "
        f"{e['model']}."
        if e.get("fallback_model")
        else f"Add a fallback deployment for {e['model']} so a failed call is retried on "
        "another model, not the same one."
    )
    return _plan(
        [
            fallback,
            "Retry only retryable errors (429, 5xx, timeouts) with backoff and a cap.",
            f"Raise the failures with {e['provider']} (errors: {kinds}).",
        ],
        _litellm_yaml("retries with backoff and a fallback for failed calls", config),
        f"The error rate of {e['model']} ({100 * e['error_rate']:.1f}%) and the retry count "
        "should drop in the next period's data.",
        "Remove the fallback and retry policy from router_settings.",
    )


def _latency(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    feature = e["feature"] or "untagged"
    config = _with_fallback(e, timeout=round(e["timeout_suggestion_ms"] / 1000, 1))
    config["router_settings"]["num_retries"] = 1
    fallback = (
        f"fall back to {e['fallback_model']} (p95 "
        f"{e['fallback_p95_latency_ms']:,.0f} ms) when it fires"
        if e.get("fallback_model")
        else "retry once when it fires"
    )
    return _plan(
        [
            f"Set a timeout of {e['timeout_suggestion_ms']:,} ms on `{feature}` calls to "
            f"{e['model']} and {fallback}.",
            "Stream responses where a user waits, so the first token shows early.",
            "Look at the slowest calls' inputs: long tool loops or outputs drive the tail.",
        ],
        _litellm_yaml(f"a timeout for {feature} calls on {e['model']}", config),
        f"p99 latency of `{feature}` should fall from {e['p99_latency_ms']:,.0f} ms towards "
        "the timeout; watch how often the fallback answers.",
        "Remove the timeout and fallback.",
    )


PLANS: dict[str, Callable[[Mapping[str, Any]], Plan]] = {
    "model_routing": _routing,
    "prompt_caching": _caching,
    "batch_api": _batch,
    "output_token_caps": _output_caps,
    "prompt_trimming": _trimming,
    "error_retry_waste": _errors,
    "latency": _latency,
}


def plan_for(item: Mapping[str, Any]) -> Plan:
    """The action plan of one report recommendation."""
    return {"recommendation_id": item["id"], "title": item["title"], **PLANS[item["kind"]](item)}


class ActionsAgent:
    name = "actions"
    task = "Turn each recommendation into concrete steps, with validation and rollback"

    async def run(
        self, agent: AgentScope, recommendations: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        await agent.think(f"Writing an action plan for {len(recommendations)} recommendations.")

        async def plan_actions(**arguments: Any) -> list[dict[str, Any]]:
            wanted = set(arguments.get("recommendation_ids", []))
            return [plan_for(item) for item in recommendations if item["id"] in wanted]

        agent.context.tools.register(
            "plan_actions",
            plan_actions,
            include_result=False,
            description="Steps, config, validation and rollback.",
            summarize=lambda plans: f"{len(plans)} action plans",
        )
        result = await agent.call(
            "plan_actions", {"recommendation_ids": [item["id"] for item in recommendations]}
        )
        actions: list[dict[str, Any]] = result.result if result.ok else []
        if not result.ok:
            await agent.think(f"The action plan could not be built ({result.error}).")
        agent.result_summary = f"{len(actions)} action plans"
        return actions
