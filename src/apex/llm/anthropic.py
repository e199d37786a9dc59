"""Anthropic Messages API through the official `anthropic` SDK.

Structured output is requested as a forced tool call whose input schema is the output type's
JSON schema; the tool input is then validated with pydantic. Offered tools go out as
`{name, description, input_schema}` with `tool_choice: auto`; the model's `tool_use` content
blocks are its calls. System messages go to the `system` parameter. Usage is converted to Apex's
convention: Anthropic's `input_tokens` excludes cache reads and cache writes, so both are added
back, cache reads become `cached_input_tokens` and cache writes `cache_write_input_tokens`.
The SDK's own retries are off: `ProviderGuard` owns timeouts, retries and the breaker.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anthropic
from pydantic import BaseModel

from apex.llm.base import ChatMessage, ChatSettings, ProseDelta, ToolSpec
from apex.llm.errors import LanguageModelError
from apex.llm.provider import (
    NO_API_KEY,
    Pieces,
    ProviderModel,
    ProviderReply,
    StreamedUsage,
    output_schema,
    sdk_error,
    tool_call,
)
from apex.llm.resilience import ProviderGuard
from apex.llm.usage import LlmUsage

ANTHROPIC_PROVIDER = "anthropic"
ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com"
OUTPUT_TOOL = "structured_output"


def _usage(usage: Any, output_tokens: int | None = None) -> LlmUsage:
    cache_read = getattr(usage, "cache_read_input_tokens", None) or 0
    cache_write = getattr(usage, "cache_creation_input_tokens", None) or 0
    details = getattr(usage, "output_tokens_details", None)
    return LlmUsage(
        input_tokens=(getattr(usage, "input_tokens", None) or 0) + cache_read + cache_write,
        output_tokens=output_tokens if output_tokens is not None else usage.output_tokens or 0,
        cached_input_tokens=cache_read,
        cache_write_input_tokens=cache_write,
        reasoning_tokens=getattr(details, "thinking_tokens", None) or 0,
        requests=1,
    )


def _text(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def _translate(error: anthropic.AnthropicError) -> LanguageModelError:
    return sdk_error(
        ANTHROPIC_PROVIDER,
        error,
        connection_error=anthropic.APIConnectionError,
        timeout_error=anthropic.APITimeoutError,
    )


class AnthropicModel(ProviderModel):
    def __init__(
        self,
        *,
        model_name: str,
        guard: ProviderGuard,
        base_url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        client = anthropic.AsyncAnthropic(
            api_key=api_key or NO_API_KEY,
            base_url=base_url or ANTHROPIC_DEFAULT_BASE_URL,
            timeout=guard.timeout_s,
            max_retries=0,
        )
        super().__init__(
            provider=ANTHROPIC_PROVIDER, model_name=model_name, guard=guard, client=client
        )

    def _request(self, messages: Sequence[ChatMessage], settings: ChatSettings) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        turns = [{"role": m.role, "content": m.content} for m in messages if m.role != "system"]
        request: dict[str, Any] = {
            "model": self.model_name,
            "messages": turns,
            "max_tokens": settings.max_tokens,
        }
        if system:
            request["system"] = system
        return request

    async def _send(
        self,
        messages: Sequence[ChatMessage],
        output_type: type[BaseModel] | None,
        settings: ChatSettings,
    ) -> ProviderReply:
        request = self._request(messages, settings)
        if output_type is not None:
            request["tools"] = [
                {
                    "name": OUTPUT_TOOL,
                    "description": (output_type.__doc__ or output_type.__name__).strip()[:1_000],
                    "input_schema": output_schema(output_type),
                }
            ]
            request["tool_choice"] = {"type": "tool", "name": OUTPUT_TOOL}
        message = await self._create(request)
        tool_inputs = [
            block.input
            for block in message.content
            if block.type == "tool_use" and block.name == OUTPUT_TOOL
        ]
        text = json.dumps(tool_inputs[0]) if tool_inputs else _text(message)
        return ProviderReply(text=text, usage=_usage(message.usage))

    async def _send_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ChatSettings
    ) -> ProviderReply:
        request = self._request(messages, settings)
        request["tools"] = [
            {
                "name": tool.name,
                "description": tool.description,
                "input_schema": dict(tool.parameters),
            }
            for tool in tools
        ]
        request["tool_choice"] = {"type": "auto"}
        message = await self._create(request)
        uses = [block for block in message.content if block.type == "tool_use"]
        calls = [
            tool_call(tools, position, block.id, block.name, block.input)
            for position, block in enumerate(uses)
        ]
        return ProviderReply.with_calls(_text(message), _usage(message.usage), calls)

    async def _create(self, request: dict[str, Any]) -> Any:
        try:
            return await self._client.messages.create(**request)
        except anthropic.AnthropicError as error:
            raise _translate(error) from error

    async def _open_stream(self, messages: Sequence[ChatMessage], settings: ChatSettings) -> Pieces:
        request = self._request(messages, settings)
        started: Any = None
        output_tokens: int | None = None
        try:
            stream = await self._client.messages.create(**request, stream=True)
            try:
                async for event in stream:
                    if event.type == "message_start":
                        started = event.message.usage
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        yield ProseDelta(event.delta.text)
                    elif event.type == "message_delta":
                        output_tokens = event.usage.output_tokens
                        started = _merge_delta_usage(started, event.usage)
            finally:
                await stream.close()
        except anthropic.AnthropicError as error:
            raise _translate(error) from error
        yield StreamedUsage(
            LlmUsage(requests=1) if started is None else _usage(started, output_tokens)
        )


def _merge_delta_usage(started: Any, delta: Any) -> Any:
    """`message_delta` may restate input and cache counts; the later figure is the final one."""
    if started is None:
        return delta
    for name in (
        "input_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "output_tokens_details",
    ):
        value = getattr(delta, name, None)
        if value is not None:
            started = started.model_copy(update={name: value})
    return started
