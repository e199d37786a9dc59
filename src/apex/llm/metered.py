"""Self-metering: record Apex's own language-model calls, tagged with a feature of their own.

`MeteredModel` wraps any model and hands one `LlmCallRecord` per provider call to an injected
recorder. The recorder is a plain async callable, so this layer knows nothing of the usage ledger:
the composition root binds one to the caller's ledger (their identity included) and wraps the
shared model per run. Calls answered by the built-in engine cost nothing and are not recorded;
when a provider failed before a fallback answered, its failed call is recorded with its error
reason (its tokens may still be billed). A failing recorder is logged and never fails the call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from apex.config.logging import get_logger
from apex.llm.base import (
    ChatMessage,
    ChatResponse,
    ChatSettings,
    LanguageModel,
    ProseEnd,
    ProseEvent,
    ToolSpec,
)
from apex.llm.errors import LanguageModelError
from apex.llm.usage import LlmUsage

OPERATION = "chat"
log = get_logger("apex.llm.metered")


@dataclass(frozen=True, slots=True)
class LlmCallRecord:
    """One `chat`/`stream` call to a provider, in the usage ledger's terms (OpenTelemetry GenAI
    names). `usage.requests` counts the HTTP requests it took (retries included); a call that
    never reached a provider (open circuit) is not recorded."""

    timestamp: datetime
    provider: str
    model: str
    operation: str
    usage: LlmUsage
    latency_ms: float
    ttft_ms: float | None
    status: Literal["ok", "error"]
    error_type: str | None
    # the usage row's feature: the caller names the one its ledger keeps these calls under
    feature: str


LlmUsageRecorder = Callable[[LlmCallRecord], Awaitable[None]]


class MeteredModel:
    """`model`, with every provider call it makes reported to `recorder`."""

    def __init__(self, model: LanguageModel, recorder: LlmUsageRecorder, *, feature: str) -> None:
        self.model = model
        self.recorder = recorder
        self.feature = feature

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def model_name(self) -> str:
        return self.model.model_name

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        output_type: type[Any] | None = None,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[Any]:
        return await self._metered(
            lambda: self.model.chat(messages, output_type=output_type, settings=settings)
        )

    async def call_tools(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[None]:
        """Recorded as a chat call: on the wire it is one, with tools offered."""
        return await self._metered(
            lambda: self.model.call_tools(messages, tools, settings=settings)
        )

    async def _metered(self, call: Callable[[], Awaitable[ChatResponse[Any]]]) -> ChatResponse[Any]:
        timestamp, started = datetime.now(UTC), time.perf_counter()
        try:
            response = await call()
        except LanguageModelError as error:
            await self._record_failure(timestamp, started, error)
            raise
        await self._record(timestamp, started, response)
        return response

    async def stream(
        self, messages: Sequence[ChatMessage], *, settings: ChatSettings | None = None
    ) -> AsyncGenerator[ProseEvent, None]:
        timestamp, started = datetime.now(UTC), time.perf_counter()
        events = self.model.stream(messages, settings=settings)
        try:
            async for event in events:
                if isinstance(event, ProseEnd):
                    await self._record(timestamp, started, event.response)
                yield event
        except LanguageModelError as error:
            await self._record_failure(timestamp, started, error)
            raise
        finally:
            await events.aclose()

    async def aclose(self) -> None:
        await self.model.aclose()

    async def _record(
        self, timestamp: datetime, started: float, response: ChatResponse[Any]
    ) -> None:
        notice = response.fallback
        if notice is not None and notice.usage.requests:
            await self._emit(
                LlmCallRecord(
                    timestamp=timestamp,
                    provider=notice.provider,
                    model=notice.model_name,
                    operation=OPERATION,
                    usage=notice.usage,
                    latency_ms=(time.perf_counter() - started) * 1_000,
                    ttft_ms=None,
                    status="error",
                    error_type=notice.reason.value,
                    feature=self.feature,
                )
            )
        if response.usage.requests:
            await self._emit(
                LlmCallRecord(
                    timestamp=timestamp,
                    provider=response.provider,
                    model=response.model_name,
                    operation=OPERATION,
                    usage=response.usage,
                    latency_ms=response.latency_ms,
                    ttft_ms=response.ttft_ms,
                    status="ok",
                    error_type=None,
                    feature=self.feature,
                )
            )

    async def _record_failure(
        self, timestamp: datetime, started: float, error: LanguageModelError
    ) -> None:
        if not error.usage.requests:
            return
        await self._emit(
            LlmCallRecord(
                timestamp=timestamp,
                provider=self.model.provider,
                model=self.model.model_name,
                operation=OPERATION,
                usage=error.usage,
                latency_ms=(time.perf_counter() - started) * 1_000,
                ttft_ms=None,
                status="error",
                error_type=error.reason.value,
                feature=self.feature,
            )
        )

    async def _emit(self, record: LlmCallRecord) -> None:
        try:
            await self.recorder(record)
        except Exception as error:
            log.error(
                "llm_usage_not_recorded",
                provider=record.provider,
                model=record.model,
                error=type(error).__name__,
                exc_info=error,
            )
