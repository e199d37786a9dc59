"""The one `LanguageModel` protocol and the request/response types every adapter speaks.

Adapters (built-in, OpenAI-compatible, Anthropic) and wrappers (fallback, metering) all satisfy
the same protocol, so callers never know which one they hold, and wrappers stack freely.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar, overload, runtime_checkable

from pydantic import BaseModel

from apex.llm.errors import LlmFailureReason
from apex.llm.prose import ProseBrief
from apex.llm.usage import LlmUsage

OutputT = TypeVar("OutputT", bound=BaseModel)
ResponseT = TypeVar("ResponseT", bound=BaseModel | None)
Role = Literal["system", "user", "assistant"]
# the tool names both OpenAI and Anthropic accept
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn. `brief` carries the facts for prose: providers read them as the JSON already
    written into `content`; the built-in engine fills its templates from them directly."""

    role: Role
    content: str
    brief: ProseBrief | None = None

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        return cls("system", content)

    @classmethod
    def user(cls, content: str, brief: ProseBrief | None = None) -> ChatMessage:
        return cls("user", content, brief)

    @classmethod
    def assistant(cls, content: str) -> ChatMessage:
        return cls("assistant", content)


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """Per-call limits. `temperature` (None: the server's default) reaches OpenAI-compatible
    servers only: the Anthropic SDK no longer takes sampling parameters."""

    max_tokens: int = 1_024
    temperature: float | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may choose to call. `parameters` is the JSON schema of its arguments (an
    object schema: both providers require one); a bad name or schema fails here, before any
    request is made."""

    name: str
    description: str
    parameters: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not _TOOL_NAME.fullmatch(self.name):
            raise ValueError(f"tool name {self.name!r} must be 1-64 letters, digits, _ or -")
        if self.parameters.get("type") != "object":
            raise ValueError(f"the parameters of tool {self.name!r} must be an object schema")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model chose: one of the offered tools, with arguments that are a JSON object.
    The arguments are not checked against the tool's schema: the caller validates them."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RejectedToolCall:
    """A call the model asked for that cannot be run (unknown tool, arguments that are not a JSON
    object): dropped and reported, never raised, so the other calls of the answer still run."""

    id: str
    name: str
    reason: str


def require_tools(tools: Sequence[ToolSpec]) -> None:
    """At least one tool, each name once: what both providers demand of a tool list."""
    names = [tool.name for tool in tools]
    if not names:
        raise ValueError("call_tools needs at least one tool")
    if len(set(names)) != len(names):
        raise ValueError(f"tool names must be unique: {names}")


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
    what the model wrote (the JSON itself for structured output). `tool_calls` holds the calls
    the model chose when it was offered tools (empty when it answered in text), in its order;
    `rejected_tool_calls` the ones that were dropped as unusable."""

    text: str
    output: ResponseT
    usage: LlmUsage
    provider: str
    model_name: str
    latency_ms: float
    ttft_ms: float | None = None
    fallback: FallbackNotice | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    rejected_tool_calls: tuple[RejectedToolCall, ...] = ()


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
    """Async chat with structured output, one round of tool choice, and streamed prose.

    `chat` and `call_tools` raise `LanguageModelError` when they cannot answer; `stream` yields
    `ProseDelta`s and ends with exactly one `ProseEnd` (a `ProseRestart` only ever comes from a
    fallback). Cancellation propagates: nothing here swallows `asyncio.CancelledError`.
    """

    @property
    def provider(self) -> str: ...

    @property
    def model_name(self) -> str: ...

    @overload
    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        output_type: None = None,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[None]: ...

    @overload
    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        output_type: type[OutputT],
        settings: ChatSettings | None = None,
    ) -> ChatResponse[OutputT]: ...

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        output_type: type[OutputT] | None = None,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[OutputT] | ChatResponse[None]: ...

    async def call_tools(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[None]:
        """Offer `tools` and return the calls the model chose in `ChatResponse.tool_calls`. One
        round only: the caller runs the calls itself and no results go back to the model.
        Unusable calls land in `rejected_tool_calls`; they never fail the call."""
        ...

    def stream(
        self, messages: Sequence[ChatMessage], *, settings: ChatSettings | None = None
    ) -> AsyncGenerator[ProseEvent, None]: ...

    async def aclose(self) -> None: ...
