"""The one `LanguageModel` protocol and the request/response types every adapter speaks.

Adapters (built-in, OpenAI-compatible, Anthropic) and wrappers (fallback, metering) all satisfy
the same protocol, so callers never know which one they hold, and wrappers stack freely.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar, overload, runtime_checkable

from pydantic import BaseModel

from apex.llm.errors import LlmFailureReason
from apex.llm.prose import ProseBrief
from apex.llm.usage import LlmUsage

OutputT = TypeVar("OutputT", bound=BaseModel)
ResponseT = TypeVar("ResponseT", bound=BaseModel | None)
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn. `brief` carries the facts for prose: providers read them as the JSON already
    written into `content`; the built-in engine fills its templates from them directly."""

    role: Role
    content: str
    brief: ProseBrief | None = None

    @classmethod
    def system(cls, content: str) -> "ChatMessage":
        return cls("system", content)

    @classmethod
    def user(cls, content: str, brief: ProseBrief | None = None) -> "ChatMessage":
        return cls("user", content, brief)

    @classmethod
    def assistant(cls, content: str) -> "ChatMessage":
        return cls("assistant", content)


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """Per-call limits. `temperature` (None: the server's default) reaches OpenAI-compatible
    servers only: the Anthropic SDK no longer takes sampling parameters."""

    max_tokens: int = 1_024
    temperature: float | None = None


@dataclass(frozen=True, slots=True)
class FallbackNotice:
    """Why the configured model did not answer: what the caller tells the user it fell back from."""

    provider: str
    model_name: str
    reason: LlmFailureReason
    detail: str
    usage: LlmUsage = field(default_factory=LlmUsage)

    def describe(self) -> str:
        return (
            f"The configured language model ({self.provider}:{self.model_name}) did not answer "
            f"({self.reason.value.replace('_', ' ')}: {self.detail}); the built-in engine "
            "answered instead."
        )


@dataclass(frozen=True, slots=True)
class ChatResponse(Generic[ResponseT]):
    """A complete answer. `output` is the validated structured output (None for prose); `text` is
    what the model wrote (the JSON itself for structured output)."""

    text: str
    output: ResponseT
    usage: LlmUsage
    provider: str
    model_name: str
    latency_ms: float
    ttft_ms: float | None = None
    fallback: FallbackNotice | None = None


@dataclass(frozen=True, slots=True)
class ProseDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ProseRestart:
    """The model failed after some text was streamed: discard it; the fallback starts over."""

    notice: FallbackNotice


@dataclass(frozen=True, slots=True)
class ProseEnd:
    """Always the last event of a stream: the full text, usage and any fallback notice."""

    response: ChatResponse[None]


ProseEvent = ProseDelta | ProseRestart | ProseEnd


@runtime_checkable
class LanguageModel(Protocol):
    """Async chat with structured output, and streamed prose.

    `chat` raises `LanguageModelError` when it cannot answer; `stream` yields `ProseDelta`s and
    ends with exactly one `ProseEnd` (a `ProseRestart` only ever comes from a fallback).
    Cancellation propagates: nothing here swallows `asyncio.CancelledError`.
    """

    @property
    def provider(self) -> str: ...

    @property
    def model_name(self) -> str: ...

    @overload
    async def chat(
        self, messages: Sequence[ChatMessage], *, output_type: None = None,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[None]: ...

    @overload
    async def chat(
        self, messages: Sequence[ChatMessage], *, output_type: type[OutputT],
        settings: ChatSettings | None = None,
    ) -> ChatResponse[OutputT]: ...

    async def chat(
        self, messages: Sequence[ChatMessage], *, output_type: type[OutputT] | None = None,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[OutputT] | ChatResponse[None]: ...

    def stream(
        self, messages: Sequence[ChatMessage], *, settings: ChatSettings | None = None
    ) -> AsyncGenerator[ProseEvent, None]: ...

    async def aclose(self) -> None: ...
