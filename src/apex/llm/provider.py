"""What every network provider adapter shares: guarded requests, structured output, streaming.

An adapter only knows its wire format: how to send one request (`_send`), one request offering
tools (`_send_tools`) and how to open one stream (`_open_stream`), translating its SDK's errors
into `LanguageModelError`. This base runs each request under the `ProviderGuard`, validates
structured output with pydantic and, when the model's JSON does not fit the schema, asks once more
with the validation errors before giving up with `invalid_output` (so a fallback can answer).
Tool calls are not asked for again: an unusable one is dropped and reported, the rest still run.
"""

from __future__ import annotations

import abc
import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

from pydantic import BaseModel, ValidationError

from apex.config.logging import get_logger
from apex.llm.base import (
    ChatMessage,
    ChatResponse,
    ChatSettings,
    ProseDelta,
    ProseEnd,
    ProseEvent,
    RejectedToolCall,
    ToolCall,
    ToolSpec,
    require_tools,
)
from apex.llm.errors import LanguageModelError, LlmFailureReason
from apex.llm.resilience import ProviderGuard
from apex.llm.usage import LlmUsage

MAX_INVALID_OUTPUT_ATTEMPTS = 2
NO_API_KEY = "not-needed"
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
log = get_logger("apex.llm.provider")


@dataclass(frozen=True, slots=True)
class ProviderReply:
    """One provider response: the text (the JSON itself for structured output), its usage and,
    when tools were offered, the calls the model chose, usable or not."""

    text: str
    usage: LlmUsage
    tool_calls: tuple[ToolCall, ...] = ()
    rejected_tool_calls: tuple[RejectedToolCall, ...] = ()

    @classmethod
    def with_calls(
        cls, text: str, usage: LlmUsage, calls: Iterable[ToolCall | RejectedToolCall]
    ) -> ProviderReply:
        read = list(calls)
        return cls(
            text=text,
            usage=usage,
            tool_calls=tuple(call for call in read if isinstance(call, ToolCall)),
            rejected_tool_calls=tuple(call for call in read if isinstance(call, RejectedToolCall)),
        )


@dataclass(frozen=True, slots=True)
class StreamedUsage:
    """The usage an adapter's stream reports once it has ended."""

    usage: LlmUsage


StreamPiece = ProseDelta | StreamedUsage
Pieces = AsyncGenerator[StreamPiece, None]


def output_schema(output_type: type[BaseModel]) -> dict[str, Any]:
    return output_type.model_json_schema()


def schema_name(output_type: type[BaseModel]) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", output_type.__name__)[:64] or "output"


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds the provider asked us to wait: `retry-after-ms`, or `retry-after` in seconds or
    as an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1_000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def status_error(provider: str, status: int, headers: Mapping[str, str]) -> LanguageModelError:
    """The failure an HTTP status means: 429, 408, 409 and 5xx are worth retrying, others not."""
    if status == 429:
        wait = retry_after_s(headers)
        suffix = f", Retry-After {wait:g} s" if wait is not None else ""
        return LanguageModelError(
            f"{provider} answered HTTP 429{suffix}",
            reason=LlmFailureReason.RATE_LIMITED,
            retryable=True,
            provider_retry_after_s=wait,
            provider_status=status,
        )
    if status == 408:
        return LanguageModelError(
            f"{provider} answered HTTP 408",
            provider_status=status,
            reason=LlmFailureReason.TIMEOUT,
            retryable=True,
        )
    if status == 409 or status >= 500:
        return LanguageModelError(
            f"{provider} answered HTTP {status}",
            provider_status=status,
            reason=LlmFailureReason.SERVER_ERROR,
            retryable=True,
            provider_retry_after_s=retry_after_s(headers),
        )
    return LanguageModelError(
        f"{provider} rejected the request with HTTP {status}",
        reason=LlmFailureReason.REJECTED,
        provider_status=status,
    )


def sdk_error(
    provider: str,
    error: Exception,
    *,
    connection_error: type[Exception],
    timeout_error: type[Exception],
) -> LanguageModelError:
    """Translate an error of a Stainless-generated SDK (both official SDKs are): HTTP status
    errors carry `status_code` and the `response`, transport errors are their own classes."""
    status = getattr(error, "status_code", None)
    response = getattr(error, "response", None)
    if isinstance(status, int) and response is not None:
        return status_error(provider, status, response.headers)
    if isinstance(error, timeout_error):
        return LanguageModelError(
            f"{provider} did not answer in time", reason=LlmFailureReason.TIMEOUT, retryable=True
        )
    if isinstance(error, connection_error):
        return LanguageModelError(
            f"could not reach {provider}", reason=LlmFailureReason.CONNECTION_ERROR, retryable=True
        )
    return LanguageModelError(
        f"{provider} failed: {type(error).__name__}",
        reason=LlmFailureReason.SERVER_ERROR,
        retryable=True,
    )


def tool_call(
    tools: Sequence[ToolSpec],
    position: int,
    call_id: str | None,
    name: str | None,
    arguments: object,
    *,
    json_text: bool = False,
) -> ToolCall | RejectedToolCall:
    """One call as the model wrote it, checked: an offered tool, arguments that are a JSON object.
    `json_text`: the arguments arrive as JSON text (OpenAI); a server that already decoded them
    is accepted too. A missing id (some local servers send none) becomes its position."""
    call_id = call_id or f"call_{position}"
    name = name or ""
    if name not in {tool.name for tool in tools}:
        return RejectedToolCall(call_id, name, "not one of the offered tools")
    if json_text and isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return RejectedToolCall(call_id, name, "arguments are not valid JSON")
    if not isinstance(arguments, dict):
        return RejectedToolCall(call_id, name, "arguments are not a JSON object")
    return ToolCall(call_id, name, arguments)


def parse_output(output_type: type[BaseModel], text: str) -> BaseModel:
    """Validate the model's JSON, tolerating the Markdown fence some local models wrap it in."""
    fenced = _FENCE.match(text)
    return output_type.model_validate_json(fenced.group(1) if fenced else text)


def _correction(
    messages: Sequence[ChatMessage], text: str, error: ValidationError
) -> list[ChatMessage]:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'reply'}: {item['msg']}"
        for item in error.errors()[:10]
    )
    return [
        *messages,
        ChatMessage.user(
            "Your previous reply did not match the required JSON schema "
            f"({problems}). The invalid reply was:\n{text[:2_000]}\n"
            "Reply again with only a JSON object that matches the schema."
        ),
    ]


class ProviderModel(abc.ABC):
    """A network language model behind the `LanguageModel` protocol."""

    def __init__(
        self, *, provider: str, model_name: str, guard: ProviderGuard, client: Any
    ) -> None:
        self._provider = provider
        self._model_name = model_name
        self.guard = guard
        self._client = client

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model_name(self) -> str:
        return self._model_name

    @abc.abstractmethod
    async def _send(
        self,
        messages: Sequence[ChatMessage],
        output_type: type[BaseModel] | None,
        settings: ChatSettings,
    ) -> ProviderReply:
        """One request; raise `LanguageModelError` for every provider failure."""

    @abc.abstractmethod
    async def _send_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ChatSettings
    ) -> ProviderReply:
        """One request offering `tools` (the model chooses); raise `LanguageModelError` for every
        provider failure, never for an unusable call."""

    @abc.abstractmethod
    def _open_stream(self, messages: Sequence[ChatMessage], settings: ChatSettings) -> Pieces:
        """One streamed request; raise `LanguageModelError` for every provider failure."""

    async def aclose(self) -> None:
        """Close the SDK client and its connections."""
        await self._client.close()

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        output_type: type[Any] | None = None,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[Any]:
        if output_type is not None and not (
            isinstance(output_type, type) and issubclass(output_type, BaseModel)
        ):
            raise TypeError("output_type must be a pydantic BaseModel subclass")
        settings = settings or ChatSettings()
        started = time.perf_counter()
        usage = LlmUsage()
        attempt_messages = list(messages)
        for _ in range(MAX_INVALID_OUTPUT_ATTEMPTS):
            try:
                # bound now: the next attempt's messages must not reach this one
                reply = await self.guard.call(
                    partial(self._send, attempt_messages, output_type, settings)
                )
            except LanguageModelError as error:
                error.usage = usage + error.usage
                raise
            usage += reply.usage
            if output_type is None:
                if reply.text.strip():
                    return self._response(reply.text, None, usage, started)
                continue
            try:
                output = parse_output(output_type, reply.text)
            except ValidationError as error:
                attempt_messages = _correction(messages, reply.text, error)
                continue
            return self._response(reply.text, output, usage, started)
        expected = "prose" if output_type is None else output_type.__name__
        raise LanguageModelError(
            f"the model's output was not valid {expected} after "
            f"{MAX_INVALID_OUTPUT_ATTEMPTS} attempts",
            reason=LlmFailureReason.INVALID_OUTPUT,
            usage=usage,
        )

    async def call_tools(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        settings: ChatSettings | None = None,
    ) -> ChatResponse[None]:
        require_tools(tools)
        settings = settings or ChatSettings()
        started = time.perf_counter()
        reply = await self.guard.call(lambda: self._send_tools(messages, tools, settings))
        if reply.rejected_tool_calls:
            log.warning(
                "llm_tool_calls_rejected",
                provider=self.provider,
                model=self.model_name,
                rejected=[
                    f"{call.name or '?'}: {call.reason}" for call in reply.rejected_tool_calls
                ],
            )
        return replace(
            self._response(reply.text, None, reply.usage, started),
            tool_calls=reply.tool_calls,
            rejected_tool_calls=reply.rejected_tool_calls,
        )

    async def stream(
        self, messages: Sequence[ChatMessage], *, settings: ChatSettings | None = None
    ) -> AsyncGenerator[ProseEvent, None]:
        """Retries apply until the first piece arrives; after that a failure ends the stream."""
        settings = settings or ChatSettings()
        started = time.perf_counter()
        pieces, first = await self.guard.call(lambda: self._first_piece(messages, settings))
        ttft_ms = (time.perf_counter() - started) * 1_000
        usage = LlmUsage()
        chunks: list[str] = []
        try:
            piece: StreamPiece | None = first
            while piece is not None:
                if isinstance(piece, ProseDelta):
                    if piece.text:
                        chunks.append(piece.text)
                        yield piece
                else:
                    usage = piece.usage
                piece = await self._next_piece(pieces)
        except LanguageModelError as error:
            self.guard.breaker.failed()
            error.usage = error.usage + LlmUsage(requests=1)
            raise
        finally:
            await pieces.aclose()
        if not "".join(chunks).strip():
            raise LanguageModelError(
                "the model streamed no text", reason=LlmFailureReason.INVALID_OUTPUT, usage=usage
            )
        yield ProseEnd(self._response("".join(chunks), None, usage, started, ttft_ms))

    async def _first_piece(
        self, messages: Sequence[ChatMessage], settings: ChatSettings
    ) -> tuple[Pieces, StreamPiece | None]:
        pieces = self._open_stream(messages, settings)
        try:
            return pieces, await self._read(pieces)
        except BaseException:
            await pieces.aclose()
            raise

    async def _next_piece(self, pieces: Pieces) -> StreamPiece | None:
        try:
            async with asyncio.timeout(self.guard.timeout_s):
                return await self._read(pieces)
        except TimeoutError as exc:
            raise LanguageModelError(
                f"the stream stalled for {self.guard.timeout_s:g} s",
                reason=LlmFailureReason.TIMEOUT,
            ) from exc

    async def _read(self, pieces: Pieces) -> StreamPiece | None:
        """The next piece; a transport error the SDK lets through while streaming (a dropped
        connection, a malformed event) becomes a retryable connection error."""
        try:
            return await anext(pieces, None)
        except (LanguageModelError, TimeoutError):
            raise
        except Exception as exc:
            raise LanguageModelError(
                f"the {self.provider} stream broke off ({type(exc).__name__})",
                reason=LlmFailureReason.CONNECTION_ERROR,
                retryable=True,
            ) from exc

    def _response(
        self, text: str, output: Any, usage: LlmUsage, started: float, ttft_ms: float | None = None
    ) -> ChatResponse[Any]:
        return ChatResponse(
            text=text,
            output=output,
            usage=usage,
            provider=self.provider,
            model_name=self.model_name,
            latency_ms=(time.perf_counter() - started) * 1_000,
            ttft_ms=ttft_ms,
        )
