"""Self-metering: the platform's own language-model calls, recorded in the caller's ledger.

`ledger_recorder(importer, user_id)` is the recorder a run's `MeteredModel` reports to: each
provider call becomes one usage row of that user, tagged `feature="apex"`, priced from the
catalog like any other row. The built-in engine makes no provider call, so it records nothing.
"""

from __future__ import annotations

import asyncio

from apex.analytics.ingest import UsageImporter
from apex.ids import new_id
from apex.llm import LlmCallRecord, LlmUsageRecorder


def ledger_recorder(importer: UsageImporter, user_id: str) -> LlmUsageRecorder:
    async def record(call: LlmCallRecord) -> None:
        await asyncio.to_thread(
            importer.record_calls,
            user_id,
            [
                {
                    "timestamp": call.timestamp,
                    "provider": call.provider,
                    "model": call.model,
                    "operation": call.operation,
                    "input_tokens": call.usage.input_tokens,
                    "output_tokens": call.usage.output_tokens,
                    "cached_input_tokens": call.usage.cached_input_tokens,
                    "cache_write_input_tokens": call.usage.cache_write_input_tokens,
                    "reasoning_tokens": call.usage.reasoning_tokens,
                    "latency_ms": call.latency_ms,
                    "ttft_ms": call.ttft_ms,
                    "status": call.status,
                    "error_type": call.error_type or "",
                    "feature": call.feature,
                    "tags": [call.feature],
                    "request_id": "apex-" + new_id(),
                }
            ],
        )

    return record
