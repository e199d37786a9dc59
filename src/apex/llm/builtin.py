"""The built-in deterministic engine: the default language model, with no network at all.

It answers the two requests Apex makes of a language model:
- structured output of type `QuestionPlan` (or a subclass): rules over the latest user
  message, with the earlier user messages as thread context (`classify`);
- prose (no output type): Markdown from templates, filled from the `ProseBrief` carried by the
  messages (`templates`), or, without a brief, a reply saying how the request was understood.
Any other output type is refused with `unsupported_output`, so a misuse fails loudly.
Offered tools, it chooses none: the response has no tool calls and no text, and the caller
falls back to its own rules, exactly as it does when a provider's model calls no tool.
It reports zero tokens and zero requests: it is never billed and never metered.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from apex.llm.base import (
    ChatMessage,
    ChatResponse,
    ChatSettings,
    ProseDelta,
    ProseEnd,
    ProseEvent,
    ToolSpec,
    require_tools,
)
from apex.llm.classify import classify_request
from apex.llm.errors import LanguageModelError, LlmFailureReason
from apex.llm.plan import QuestionPlan
from apex.llm.prose import ProseBrief
from apex.llm.templates import render_brief, render_reply
from apex.llm.usage import LlmUsage

BUILTIN_PROVIDER = "builtin"
BUILTIN_MODEL_NAME = "apex-rules-1"
_CHUNK = re.compile(r"\S+\s*|\s+")


def _user_texts(messages: Sequence[ChatMessage]) -> list[str]:
    return [message.content for message in messages if message.role == "user"]


def _brief(messages: Sequence[ChatMessage]) -> ProseBrief | None:
    for message in reversed(messages):
        if message.brief is not None:
            return message.brief
    return None


class BuiltinModel:
    """Rules and templates behind the `LanguageModel` protocol."""

    @property
    def provider(self) -> str:
        return BUILTIN_PROVIDER

    @property
    def model_name(self) -> str:
        return BUILTIN_MODEL_NAME

    def classify(self, messages: Sequence[ChatMessage]) -> QuestionPlan:
        texts = _user_texts(messages)
        if not texts:
            return classify_request("")
        return classify_request(texts[-1], texts[:-1])

    def write(self, messages: Sequence[ChatMessage]) -> str:
        brief = _brief(messages)
        if brief is None:
            return render_reply(self.classify(messages))
        classification = brief.classification or classify_request(brief.question)
        return render_brief(brief, classification)

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        output_type: type[Any] | None = None,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[Any]:
        started = time.perf_counter()
        if output_type is None:
            text = self.write(messages)
            return self._response(text, None, started)
        if not (isinstance(output_type, type) and issubclass(output_type, QuestionPlan)):
            raise LanguageModelError(
                f"the built-in engine produces QuestionPlan or prose, not "
                f"{getattr(output_type, '__name__', output_type)}",
                reason=LlmFailureReason.UNSUPPORTED_OUTPUT,
            )
        classification = self.classify(messages)
        output = output_type.model_validate(classification.model_dump())
        return self._response(output.model_dump_json(), output, started)

    async def call_tools(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[None]:
        require_tools(tools)
        return self._response("", None, time.perf_counter())

    async def stream(
        self, messages: Sequence[ChatMessage], *, settings: ChatSettings | None = None
    ) -> AsyncGenerator[ProseEvent, None]:
        started = time.perf_counter()
        text = self.write(messages)
        for piece in _CHUNK.findall(text):
            yield ProseDelta(piece)
        yield ProseEnd(self._response(text, None, started, ttft=True))

    async def aclose(self) -> None:
        return None

    def _response(
        self, text: str, output: Any, started: float, ttft: bool = False
    ) -> ChatResponse[Any]:
        elapsed = (time.perf_counter() - started) * 1_000
        return ChatResponse(
            text=text,
            output=output,
            usage=LlmUsage(),
            provider=self.provider,
            model_name=self.model_name,
            latency_ms=elapsed,
            ttft_ms=elapsed if ttft else None,
        )
