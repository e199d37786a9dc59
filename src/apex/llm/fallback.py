"""Chain a provider with the built-in engine, so a failing provider never fails a run.

When the primary cannot answer, the fallback answers and the response carries a
`FallbackNotice` (which model, why, what it still consumed): the caller turns
`notice.describe()` into an `agent_thinking` event. Cancellation is never caught.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from apex.config.logging import get_logger
from apex.llm.base import (
    ChatMessage,
    ChatResponse,
    ChatSettings,
    FallbackNotice,
    LanguageModel,
    ProseDelta,
    ProseEnd,
    ProseEvent,
    ProseRestart,
    ToolSpec,
)
from apex.llm.errors import LanguageModelError, LlmFailureReason

log = get_logger("apex.llm.fallback")


class FallbackModel:
    """`primary`, and `fallback` whenever the primary raises."""

    def __init__(self, primary: LanguageModel, fallback: LanguageModel) -> None:
        self.primary = primary
        self.fallback = fallback

    @property
    def provider(self) -> str:
        return self.primary.provider

    @property
    def model_name(self) -> str:
        return self.primary.model_name

    def _notice(self, error: Exception) -> FallbackNotice:
        if isinstance(error, LanguageModelError):
            notice = FallbackNotice(
                provider=self.primary.provider,
                model_name=self.primary.model_name,
                reason=error.reason,
                detail=error.message,
                usage=error.usage,
            )
        else:
            log.error(
                "llm_unexpected_error",
                provider=self.primary.provider,
                error=type(error).__name__,
                exc_info=error,
            )
            notice = FallbackNotice(
                provider=self.primary.provider,
                model_name=self.primary.model_name,
                reason=LlmFailureReason.UNEXPECTED_ERROR,
                detail=type(error).__name__,
            )
        log.warning(
            "llm_fell_back",
            provider=notice.provider,
            model=notice.model_name,
            reason=notice.reason.value,
            detail=notice.detail,
        )
        return notice

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        output_type: type[Any] | None = None,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[Any]:
        return await self._answer(
            lambda model: model.chat(messages, output_type=output_type, settings=settings)
        )

    async def call_tools(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[None]:
        """The built-in fallback chooses no tools: the notice tells the caller why none came."""
        return await self._answer(
            lambda model: model.call_tools(messages, tools, settings=settings)
        )

    async def _answer(
        self,
        ask: Callable[[LanguageModel], Awaitable[ChatResponse[Any]]],
    ) -> ChatResponse[Any]:
        try:
            return await ask(self.primary)
        except Exception as error:
            notice = self._notice(error)
        return replace(await ask(self.fallback), fallback=notice)

    async def stream(
        self, messages: Sequence[ChatMessage], *, settings: ChatSettings | None = None
    ) -> AsyncGenerator[ProseEvent, None]:
        streamed = False
        notice: FallbackNotice | None = None
        primary = self.primary.stream(messages, settings=settings)
        try:
            async for event in primary:
                streamed = streamed or isinstance(event, ProseDelta)
                yield event
        except Exception as error:
            notice = self._notice(error)
        finally:
            await primary.aclose()
        if notice is None:
            return
        if streamed:
            yield ProseRestart(notice)
        secondary = self.fallback.stream(messages, settings=settings)
        try:
            async for event in secondary:
                if isinstance(event, ProseEnd):
                    event = ProseEnd(replace(event.response, fallback=notice))
                yield event
        finally:
            await secondary.aclose()

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.fallback.aclose()
