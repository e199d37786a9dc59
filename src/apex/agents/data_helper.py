"""The data_helper agent: what data is missing for this question, and how to get it per format.

Runs when triage found no usable data (a guidance report) or only part of it. Its instructions
are concrete for each upload format Apex reads: the CSV/JSONL column names, the OpenTelemetry
GenAI attributes, the LiteLLM spend-log fields.
"""

from __future__ import annotations

from typing import Any

from apex.execution.workflow import AgentScope
from apex.llm import RequestCategory

# Where each column comes from, per upload format: (CSV/JSONL column, OpenTelemetry, LiteLLM).
SOURCES: dict[str, tuple[str, str, str]] = {
    "timestamp": ("timestamp", "span start time", "startTime"),
    "provider": ("provider", "gen_ai.provider.name", "custom_llm_provider"),
    "model": ("model", "gen_ai.request.model", "model"),
    "input_tokens": ("input_tokens", "gen_ai.usage.input_tokens", "prompt_tokens"),
    "output_tokens": ("output_tokens", "gen_ai.usage.output_tokens", "completion_tokens"),
    "cost_usd": (
        "cost_usd (or leave it out: Apex prices from its catalog)",
        "none: priced from the catalog",
        "spend",
    ),
    "latency_ms": ("latency_ms", "span end - start (automatic)", "endTime - startTime (automatic)"),
    "ttft_ms": ("ttft_ms", "gen_ai.server.time_to_first_token", "completionStartTime"),
    "feature": ("feature (or tags)", "gen_ai.agent.name or a feature attribute", "metadata tags"),
    "prompt_hash": (
        "prompt_hash (hash it before export)",
        "a prompt_hash attribute",
        "a prompt_hash metadata field",
    ),
    "status": ("status (ok/error) and error_type", "span status, error.type", "status"),
}
REQUIRED = ("timestamp", "provider", "model", "input_tokens", "output_tokens")
CSV_EXAMPLE = (
    "timestamp,provider,model,operation,input_tokens,output_tokens,"
    "cached_input_tokens,latency_ms,ttft_ms,status,error_type,feature,end_user,"
    "prompt_hash\n"
    "2026-11-01T12:00:00.000Z,openai,gpt-4o,chat,1200,180,0,2350,410,ok,,"
    "summarization,user-17,9f2c4e1a"
)


def instructions(missing: list[str], category: str) -> str:
    """Markdown: the columns to add and, per format, where each comes from."""
    wanted = list(dict.fromkeys([*missing, *REQUIRED]))
    lines = ["### How to load the missing data", ""]
    if missing:
        lines += ["Your rows lack: " + ", ".join(f"`{name}`" for name in missing) + ".", ""]
    lines += [
        "| column | CSV / JSONL | OpenTelemetry GenAI spans | LiteLLM spend logs |",
        "|---|---|---|---|",
    ]
    for name in wanted:
        csv, otel, litellm = SOURCES.get(name, (name, name, name))
        lines.append(f"| `{name}` | {csv} | {otel} | {litellm} |")
    lines += [
        "",
        "1. **CSV** (one row per call), for example:",
        "",
        "```csv",
        CSV_EXAMPLE,
        "```",
        "2. **JSONL**: one JSON object per line with the same keys.",
        "3. **OpenTelemetry**: export your GenAI spans as OTLP/JSON (`resourceSpans`).",
        "4. **LiteLLM**: export the spend logs (`/spend/logs` or the `LiteLLM_SpendLogs` table) "
        "as JSON or CSV.",
        "",
        "Upload with `POST /api/usage/uploads` (multipart `file`) or the upload button; bad rows "
        "are reported by line and the good ones kept. Or load the demo data "
        "(`POST /api/usage/demo`) to see a full report first.",
    ]
    if category == RequestCategory.LATENCY.value:
        lines.append(
            "For latency questions, `latency_ms` per call is essential; `ttft_ms` "
            "adds time to first token for streamed calls."
        )
    return "\n".join(lines)


class DataHelperAgent:
    name = "data_helper"
    task = "Work out what data is missing and how to load it"

    async def run(self, agent: AgentScope, *, missing: list[str], category: str) -> str:
        await agent.think(
            "No usable data for this question yet: listing what to upload."
            if not missing
            else f"The data lacks {', '.join(missing)} for this question."
        )

        async def upload_instructions(**arguments: Any) -> str:
            return instructions(
                list(arguments.get("missing", [])), str(arguments.get("category", ""))
            )

        agent.context.tools.register(
            "upload_instructions",
            upload_instructions,
            include_result=False,
            description="Columns to add and how, per upload format.",
            summarize=lambda text: f"{text.count(chr(10)) + 1} lines of instructions",
        )
        result = await agent.call("upload_instructions", {"missing": missing, "category": category})
        agent.result_summary = (
            ("missing " + ", ".join(missing)) if missing else "upload instructions ready"
        )
        return result.result if result.ok else instructions(missing, category)
