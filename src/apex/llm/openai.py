"""OpenAI-compatible chat completions through the official `openai` SDK.

Any server speaking `/v1/chat/completions` works: OpenAI itself, vLLM, Ollama, LiteLLM proxy.
Structured output is requested as `response_format: json_schema` (non-strict, so pydantic schemas
with defaults are accepted and local servers can guide decoding with it) and validated here.
Tools are offered as `function` tools with `tool_choice: auto` and parallel calls allowed; each
call's `function.arguments` is JSON text, decoded and checked here.
The SDK's own retries are off: `ProviderGuard` owns timeouts, retries and the breaker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import openai
from pydantic import BaseModel

from apex.llm.base import (
    ChatMessage,
    ChatSettings,
    ProseDelta,
    RejectedToolCall,
    ToolCall,
    ToolSpec,
)
from apex.llm.errors import LanguageModelError
from apex.llm.provider import (
    NO_API_KEY,
    Pieces,
    ProviderModel,
    ProviderReply,
    StreamedUsage,
    output_schema,
    schema_name,
    sdk_error,
    tool_call,
)
from apex.llm.resilience import ProviderGuard
from apex.llm.usage import LlmUsage

OPENAI_PROVIDER = "openai"
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


def _usage(usage: Any) -> LlmUsage:
    if usage is None:
        return LlmUsage(requests=1)
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return LlmUsage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_input_tokens=getattr(prompt_details, "cached_tokens", None) or 0,
        reasoning_tokens=getattr(completion_details, "reasoning_tokens", None) or 0,
        requests=1,
    )


def _translate(error: openai.OpenAIError) -> LanguageModelError:
    return sdk_error(
        OPENAI_PROVIDER,
        error,
        connection_error=openai.APIConnectionError,
        timeout_error=openai.APITimeoutError,
    )


def _wire_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [{"role": message.role, "content": message.content} for message in messages]


def _wire_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": dict(tool.parameters),
            },
        }
        for tool in tools
    ]


def _read_call(tools: Sequence[ToolSpec], position: int, call: Any) -> ToolCall | RejectedToolCall:
    """A `function` call; any other kind (a `custom` tool call) has no `function` and is refused
    as a tool that was not offered."""
    function = getattr(call, "function", None)
    return tool_call(
        tools,
        position,
        getattr(call, "id", None),
        getattr(function, "name", None),
        getattr(function, "arguments", None),
        json_text=True,
    )


def _message(completion: Any) -> Any:
    return completion.choices[0].message if completion.choices else None


class OpenAIModel(ProviderModel):
    def __init__(
        self,
        *,
        model_name: str,
        guard: ProviderGuard,
        base_url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        client = openai.AsyncOpenAI(
            api_key=api_key or NO_API_KEY,
            base_url=base_url or OPENAI_DEFAULT_BASE_URL,
            timeout=guard.timeout_s,
            max_retries=0,
        )
        super().__init__(
            provider=OPENAI_PROVIDER, model_name=model_name, guard=guard, client=client
        )

    def _request(self, messages: Sequence[ChatMessage], settings: ChatSettings) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model_name,
            "messages": _wire_messages(messages),
            "max_completion_tokens": settings.max_tokens,
        }
        if settings.temperature is not None:
            request["temperature"] = settings.temperature
        return request

    async def _send(
        self,
        messages: Sequence[ChatMessage],
        output_type: type[BaseModel] | None,
        settings: ChatSettings,
    ) -> ProviderReply:
        request = self._request(messages, settings)
        if output_type is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema_name(output_type),
                    "schema": output_schema(output_type),
                    "strict": False,
                },
            }
        completion = await self._complete(request)
        message = _message(completion)
        text = (message.content if message is not None else None) or ""
        return ProviderReply(text=text, usage=_usage(completion.usage))

    async def _send_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: ChatSettings
    ) -> ProviderReply:
        request = self._request(messages, settings)
        request.update(tools=_wire_tools(tools), tool_choice="auto", parallel_tool_calls=True)
        completion = await self._complete(request)
        message = _message(completion)
        if message is None:
            return ProviderReply(text="", usage=_usage(completion.usage))
        calls = [
            _read_call(tools, position, call)
            for position, call in enumerate(message.tool_calls or [])
        ]
        return ProviderReply.with_calls(message.content or "", _usage(completion.usage), calls)

    async def _complete(self, request: dict[str, Any]) -> Any:
        try:
            return await self._client.chat.completions.create(**request)
        except openai.OpenAIError as error:
            raise _translate(error) from error

    async def _open_stream(self, messages: Sequence[ChatMessage], settings: ChatSettings) -> Pieces:
        request = self._request(messages, settings)
        usage: LlmUsage | None = None
        try:
            stream = await self._client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True}
            )
            try:
                async for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield ProseDelta(choice.delta.content)
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
            finally:
                await stream.close()
        except openai.OpenAIError as error:
            raise _translate(error) from error
        yield StreamedUsage(usage or LlmUsage(requests=1))
