"""The actions agent: a concrete change for each recommendation, with validation and rollback.

Model routing gets a LiteLLM router config, caching the provider's cache settings or a response
cache, batch traffic the batch-job change; each plan names what to measure to validate it and
how to undo it. Every name in a plan comes from the recommendation's evidence (the caller's own
rows), quoted as data in YAML/JSON strings, never as instructions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from apex.execution.workflow import AgentScope

Plan = dict[str, Any]


def _q(value: Any) -> str:
    """A value quoted for YAML/JSON snippets (JSON strings are valid YAML)."""
    return json.dumps(str(value), ensure_ascii=False)


def _deployment(name: str, model: str, **params: object) -> list[str]:
    """One LiteLLM `model_list` entry."""
    return [f"  - model_name: {_q(name)}", "    litellm_params:", f"      model: {_q(model)}",
            *(f"      {key}: {value}" for key, value in params.items())]


def _plan(steps: list[str], snippet: list[str] | str, validation: str, rollback: str) -> Plan:
    text = snippet if isinstance(snippet, str) else "\n".join(snippet)
    return {"steps": steps, "config_snippet": text, "validation": validation,
            "rollback": rollback}


def _routing(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    provider, model, alt, feature = e["provider"], e["model"], e["alternative_model"], e["feature"]
    snippet = [
        "# litellm config.yaml: a cheaper deployment for this feature, the current one as fallback",
        "model_list:",
        *_deployment(feature + "-router", f"{provider}/{alt}"),
        *_deployment(feature + "-fallback", f"{provider}/{model}"),
        "router_settings:",
        f"  fallbacks: [{{{_q(feature + '-router')}: [{_q(feature + '-fallback')}]}}]",
        "  num_retries: 1",
    ]
    return _plan(
        [f"Add the `{feature}-router` deployment ({alt}) to your LiteLLM proxy.",
                  f"Send 10% of `{feature}` traffic to it for a day (shadow or canary), then 100%.",
                  f"Keep {model} as the fallback deployment for errors."],
        snippet,
        f"Compare {alt} against {model} on a labelled sample of `{feature}` requests (accuracy "
        "within 1 point), and watch its error rate and p95 latency for a week; Apex shows the "
        "new spend by model after an upload.",
        f"Point `{feature}` back at the `{feature}-fallback` model name ({model}); no data "
        "migration is involved.")


def _caching(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    if e.get("mechanism") == "response_cache":
        return _plan(
            [f"Enable an exact-match response cache in front of {e['model']} (LiteLLM cache, "
             "or your own keyed by the prompt hash).",
             "Start with a 24 h TTL; bypass it for requests that must be fresh."],
            ["# litellm config.yaml: exact-match response cache", "litellm_settings:",
             "  cache: true", "  cache_params:", "    type: redis", "    ttl: 86400",
             '    supported_call_types: ["completion", "acompletion"]'],
            f"Cache hit rate should approach the duplicate share "
            f"({100 * e['duplicate_share']:.1f}%) and the model's request count fall by as much.",
            "Set `cache: false` (or bypass per request with `cache: {no-cache: true}`).")
    provider = e["provider"]
    snippet = (["# Anthropic Messages API: mark the shared system prompt as cacheable",
                '{"system": [{"type": "text", "text": "<your shared system prompt>",',
                '             "cache_control": {"type": "ephemeral"}}]}']
               if provider == "anthropic" else
               [f"# {provider}: caching applies automatically to identical prompt prefixes;",
                "# put the shared system prompt and tools first and keep them byte-identical.",
                '{"messages": [{"role": "system", "content": "<shared prefix first>"}, ...]}'])
    return _plan(
        [f"Put the shared prefix first in every {e['model']} prompt and keep it byte-identical "
         "(no timestamps or ids in it).",
         "Mark it cacheable where the provider requires it (snippet)."],
        snippet,
        f"`cached_input_tokens` should rise to about {e['repeated_prefix_tokens']:,} per period "
        "in your next usage export.",
        "Remove the cache marker; prompts are unchanged otherwise.")


def _batch(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    return _plan(
        [f"Collect the `{e['feature']}` requests into a JSONL file instead of calling the API "
         "one by one.",
         "Submit it to the provider's batch endpoint and poll for the results.",
         "Write results back when the batch completes (within 24 h)."],
        ["# OpenAI-compatible Batch API: one JSONL line per request, submitted by the job",
         '{"custom_id": "row-1", "method": "POST", "url": "/v1/chat/completions",',
         f' "body": {{"model": {_q(e["model"])}, "messages": [...]}}}}',
         '# client.batches.create(input_file_id=..., endpoint="/v1/chat/completions", '
         'completion_window="24h")'],
        f"The job's spend on {e['model']} should fall by the batch discount "
        f"({float(e['batch_discount']) * 100:.0f}%); check that every custom_id comes back.",
        "Switch the job back to direct calls; nothing else depends on the batch.")


def _output_caps(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    return _plan(
        [f"Set `max_tokens` to {e['threshold_tokens']} for `{e['feature']}` calls on "
         f"{e['model']}.",
         "Ask for the expected length in the prompt, so answers end on their own."],
        ["# litellm config.yaml", "model_list:",
         *_deployment(e["feature"], f"{e['provider']}/{e['model']}",
                      max_tokens=e["threshold_tokens"])],
        "Watch the share of answers that stop at the cap (finish_reason `length`); it should "
        "stay near 5%, and quality checks should hold.",
        "Remove the `max_tokens` setting.")


def _trimming(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    return _plan(
        [f"Find what makes `{e['feature']}` prompts grow past {e['threshold_tokens']:,} tokens "
         "(whole documents, long histories).",
         "Chunk or summarise the input, or retrieve only the relevant parts.",
         "Reject or split inputs above the limit before calling the model."],
        ["# application guard before the call",
         f"MAX_INPUT_TOKENS = {e['threshold_tokens']}",
         "if count_tokens(prompt) > MAX_INPUT_TOKENS:",
         "    prompt = trim_to_budget(prompt, MAX_INPUT_TOKENS)"],
        f"p99 input tokens of `{e['feature']}` should fall from {e['p99_tokens']:,.0f} to near "
        f"{e['threshold_tokens']:,}; check the answers' accuracy on the trimmed inputs.",
        "Remove the guard; the full prompts are sent again.")


def _errors(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    kinds = ", ".join(f"{kind} {count}" for kind, count in e["errors_by_type"].items())
    return _plan(
        [f"Add a fallback deployment for {e['model']} so a failed call is retried on another "
         "model, not the same one.",
         "Retry only retryable errors (429, 5xx, timeouts) with backoff and a cap.",
         f"Raise the failures with {e['provider']} (errors: {kinds})."],
        ["# litellm config.yaml", "router_settings:", "  num_retries: 2",
         "  retry_policy: {TimeoutErrorRetries: 1, RateLimitErrorRetries: 2}",
         f"  fallbacks: [{{{_q(e['model'])}: [\"<a reliable model>\"]}}]",
         "  allowed_fails: 3", "  cooldown_time: 30"],
        f"The error rate of {e['model']} ({100 * e['error_rate']:.1f}%) and the retry count "
        "should drop in the next period's data.",
        "Remove the fallback and retry policy from router_settings.")


def _latency(item: Mapping[str, Any]) -> Plan:
    e = item["evidence"]
    return _plan(
        [f"Set a timeout of {e['timeout_suggestion_ms']:,} ms on `{e['feature']}` calls to "
         f"{e['model']} and fall back to a faster model when it fires.",
         "Stream responses where a user waits, so the first token shows early.",
         "Look at the slowest calls' inputs: long tool loops or outputs drive the tail."],
        ["# litellm config.yaml", "model_list:",
         *_deployment(e["feature"], f"{e['provider']}/{e['model']}",
                      timeout=f"{e['timeout_suggestion_ms'] / 1000:g}"),
         "router_settings:",
         f"  fallbacks: [{{{_q(e['feature'])}: [\"<a faster model>\"]}}]"],
        f"p99 latency of `{e['feature']}` should fall from {e['p99_latency_ms']:,.0f} ms towards "
        "the timeout; watch how often the fallback answers.",
        "Remove the timeout and fallback.")


PLANS: dict[str, Callable[[Mapping[str, Any]], Plan]] = {
    "model_routing": _routing, "prompt_caching": _caching, "batch_api": _batch,
    "output_token_caps": _output_caps, "prompt_trimming": _trimming,
    "error_retry_waste": _errors, "latency": _latency,
}


class ActionsAgent:
    name = "actions"
    task = "Turn each recommendation into concrete steps, with validation and rollback"

    async def run(self, agent: AgentScope,
                  recommendations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        await agent.think(f"Writing an action plan for {len(recommendations)} recommendations.")

        async def plan_actions(**arguments: Any) -> list[dict[str, Any]]:
            wanted = set(arguments.get("recommendation_ids", []))
            return [{"recommendation_id": item["id"], "title": item["title"],
                     **PLANS[item["kind"]](item)}
                    for item in recommendations if item["id"] in wanted]

        agent.context.tools.register("plan_actions", plan_actions, include_result=False,
                                     description="Steps, config, validation and rollback.",
                                     summarize=lambda plans: f"{len(plans)} action plans")
        result = await agent.call("plan_actions", {
            "recommendation_ids": [item["id"] for item in recommendations]})
        actions: list[dict[str, Any]] = result.result if result.ok else []
        if not result.ok:
            await agent.think(f"The action plan could not be built ({result.error}).")
        agent.result_summary = f"{len(actions)} action plans"
        return actions
