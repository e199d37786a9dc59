"""Local HTTP stubs of the OpenAI and Anthropic APIs, speaking their real wire formats.

Paid LLM APIs are the one boundary the suite cannot run, so each adapter is tested against a real
HTTP server on a free loopback port (uvicorn in a thread) that answers like the provider:
`/v1/chat/completions` with JSON or SSE chunks ending in `data: [DONE]` and the usage chunk;
`/v1/messages` with JSON or the `message_start` … `message_stop` event stream. A test scripts the
replies in order (text, structured JSON, tool calls, HTTP errors with headers, delays, streams
that break off) and reads back every request the SDK actually sent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from apex.llm.anthropic import AnthropicModel
from apex.llm.openai import OpenAIModel
from apex.llm.provider import ProviderModel
from apex.llm.resilience import CircuitBreaker, ProviderGuard, ProviderRetryPolicy


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 12
    output_tokens: int = 7
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True)
class Text:
    """A prose answer (streamed as chunks when the request asks for a stream)."""

    content: str
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class Structured:
    """A structured answer: OpenAI JSON content, Anthropic forced tool_use input."""

    data: Any
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class ToolCalls:
    """An answer choosing tools: `(name, arguments)` pairs in order, after optional `text`. A
    dict is sent as the provider sends arguments (OpenAI: JSON text, Anthropic: the `input`
    object); anything else goes on the wire as it is, to play a malformed call. The i-th call's
    id is the stub's `call_id(i)`."""

    calls: Sequence[tuple[str, Any]]
    usage: Usage = field(default_factory=Usage)
    text: str = ""


@dataclass(frozen=True)
class Failure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delay:
    seconds: float
    then: Reply


@dataclass(frozen=True)
class BrokenStream:
    """Streams the first `chunks` pieces of `content`, then drops the connection."""

    content: str
    chunks: int = 2


Reply = Text | Structured | ToolCalls | Failure | Delay | BrokenStream


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class _StreamBroken(Exception):
    pass


class RecordingSleep:
    """Stands in for `asyncio.sleep` in a guard: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class FakeClock:
    """A monotonic clock a test moves by hand, for the circuit breaker."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pieces(content: str) -> list[str]:
    """How the stubs split streamed text: word by word, spaces kept."""
    words = content.split(" ")
    return [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]


class LlmStub:
    """One provider's API on a loopback port; subclasses render the wire format."""

    path: str = ""
    call_id_prefix: str = ""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default: Reply | None = None
        self.requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        app = Starlette(routes=[Route(self.path, self._handle, methods=["POST"])])
        config = uvicorn.Config(
            app, log_level="critical", lifespan="off", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LlmStub:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("LLM stub did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def reset(self) -> None:
        with self._lock:
            self.replies.clear()
            self.default = None
            self.requests.clear()

    def call_id(self, position: int) -> str:
        """The id this stub gives the tool call at `position` of a `ToolCalls` answer."""
        return f"{self.call_id_prefix}{position}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def _next(self) -> Reply | None:
        with self._lock:
            return self.replies.popleft() if self.replies else self.default

    async def _handle(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(
            ReceivedRequest(self.path, dict(request.headers), body, time.monotonic())
        )
        reply = self._next()
        while isinstance(reply, Delay):
            await asyncio.sleep(reply.seconds)
            reply = reply.then
        if reply is None:
            return JSONResponse({"error": {"message": "no scripted reply"}}, status_code=500)
        if isinstance(reply, Failure):
            return JSONResponse(
                self.error_body(reply.status), status_code=reply.status, headers=reply.headers
            )
        if body.get("stream"):
            return StreamingResponse(self._sse(reply, body), media_type="text/event-stream")
        return JSONResponse(self.message(reply, body))

    async def _sse(self, reply: Reply, body: dict[str, Any]) -> AsyncIterator[bytes]:
        texts = 0
        for frame, carries_text in self.stream_frames(reply, body):
            if isinstance(reply, BrokenStream) and carries_text and texts >= reply.chunks:
                raise _StreamBroken("connection dropped by the stub")
            texts += carries_text
            yield frame.encode()
            await asyncio.sleep(0)

    def error_body(self, status: int) -> dict[str, Any]:
        raise NotImplementedError

    def message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def stream_frames(self, reply: Reply, body: dict[str, Any]) -> Iterator[tuple[str, bool]]:
        """The SSE frames of a streamed reply, each with whether it carries text."""
        raise NotImplementedError


def _content(reply: Reply) -> str:
    if isinstance(reply, Structured):
        return json.dumps(reply.data) if not isinstance(reply.data, str) else reply.data
    if isinstance(reply, Text | BrokenStream):
        return reply.content
    raise TypeError(reply)


def _usage(reply: Reply) -> Usage:
    return reply.usage if isinstance(reply, Text | Structured | ToolCalls) else Usage()


class OpenAIStub(LlmStub):
    """`POST /v1/chat/completions` as OpenAI (and vLLM, Ollama) serve it."""

    path = "/v1/chat/completions"
    call_id_prefix = "call_stub"
    created = 1_760_000_000

    @staticmethod
    def usage_body(usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {
                "cached_tokens": usage.cached_input_tokens,
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": usage.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def error_body(self, status: int) -> dict[str, Any]:
        kind = {
            429: ("rate_limit_exceeded", "requests"),
            401: ("invalid_api_key", "invalid_request_error"),
        }
        code, error_type = kind.get(status, ("server_error", "server_error"))
        return {
            "error": {
                "message": f"stub error {status}",
                "type": error_type,
                "param": None,
                "code": code,
            }
        }

    def message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if isinstance(reply, ToolCalls):
            message["content"] = reply.text or None
            message["tool_calls"] = [
                {
                    "id": self.call_id(i),
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": json.dumps(args) if isinstance(args, dict) else args,
                    },
                }
                for i, (name, args) in enumerate(reply.calls)
            ]
            finish = "tool_calls"
        else:
            message["content"] = _content(reply)
            finish = "stop"
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": self.created,
            "model": body.get("model", "stub-model"),
            "system_fingerprint": "fp_stub",
            "choices": [
                {"index": 0, "logprobs": None, "finish_reason": finish, "message": message}
            ],
            "usage": self.usage_body(_usage(reply)),
        }

    def stream_frames(self, reply: Reply, body: dict[str, Any]) -> Iterator[tuple[str, bool]]:
        def chunk(delta: dict[str, Any], finish: str | None) -> str:
            return (
                "data: "
                + json.dumps(
                    {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": body.get("model", "stub-model"),
                        "system_fingerprint": "fp_stub",
                        "choices": [
                            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                        ],
                    }
                )
                + "\n\n"
            )

        yield chunk({"role": "assistant", "content": "", "refusal": None}, None), False
        for piece in pieces(_content(reply)):
            yield chunk({"content": piece}, None), True
        yield chunk({}, "stop"), False
        if (body.get("stream_options") or {}).get("include_usage"):
            yield (
                "data: "
                + json.dumps(
                    {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": body.get("model", "stub-model"),
                        "choices": [],
                        "usage": self.usage_body(_usage(reply)),
                    }
                )
                + "\n\n",
                False,
            )
        yield "data: [DONE]\n\n", False


class AnthropicStub(LlmStub):
    """`POST /v1/messages` as the Anthropic API serves it."""

    path = "/v1/messages"
    call_id_prefix = "toolu_stub"

    @staticmethod
    def usage_body(usage: Usage, output_tokens: int | None = None) -> dict[str, Any]:
        """Anthropic counts cache reads and writes apart from `input_tokens`."""
        body: dict[str, Any] = {
            "input_tokens": usage.input_tokens
            - usage.cached_input_tokens
            - usage.cache_write_tokens,
            "cache_read_input_tokens": usage.cached_input_tokens,
            "cache_creation_input_tokens": usage.cache_write_tokens,
            "output_tokens": usage.output_tokens if output_tokens is None else output_tokens,
        }
        if usage.reasoning_tokens:
            body["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
        return body

    def error_body(self, status: int) -> dict[str, Any]:
        kind = {
            429: "rate_limit_error",
            529: "overloaded_error",
            401: "authentication_error",
            400: "invalid_request_error",
        }.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": f"stub error {status}"}}

    def message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        if isinstance(reply, Structured) and body.get("tools"):
            tool = body["tools"][0]["name"]
            content: list[dict[str, Any]] = [
                {"type": "tool_use", "id": "toolu_stub", "name": tool, "input": reply.data}
            ]
            stop = "tool_use"
        elif isinstance(reply, ToolCalls):
            content = [{"type": "text", "text": reply.text}] if reply.text else []
            content += [
                {"type": "tool_use", "id": self.call_id(i), "name": name, "input": args}
                for i, (name, args) in enumerate(reply.calls)
            ]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": _content(reply)}]
            stop = "end_turn"
        return {
            "id": "msg_stub",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "stub-model"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": self.usage_body(_usage(reply)),
        }

    def stream_frames(self, reply: Reply, body: dict[str, Any]) -> Iterator[tuple[str, bool]]:
        def event(name: str, data: dict[str, Any]) -> str:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n"

        usage = _usage(reply)
        yield (
            event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_stub",
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": body.get("model", "stub-model"),
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": self.usage_body(usage, output_tokens=1),
                    },
                },
            ),
            False,
        )
        yield (
            event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            False,
        )
        yield event("ping", {"type": "ping"}), False
        for piece in pieces(_content(reply)):
            delta = {"type": "text_delta", "text": piece}
            yield (
                event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                ),
                True,
            )
        yield event("content_block_stop", {"type": "content_block_stop", "index": 0}), False
        yield (
            event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {
                        "output_tokens": usage.output_tokens,
                        **(
                            {"output_tokens_details": {"thinking_tokens": usage.reasoning_tokens}}
                            if usage.reasoning_tokens
                            else {}
                        ),
                    },
                },
            ),
            False,
        )
        yield event("message_stop", {"type": "message_stop"}), False


@dataclass
class Provider:
    """One stub and the adapter that speaks its wire format, with a guard a test controls: its
    sleeps are recorded (unless `real_sleep`) and its breaker runs on a hand-moved clock."""

    stub: LlmStub
    sleep: RecordingSleep
    clock: FakeClock

    @classmethod
    def of(cls, stub: LlmStub) -> Provider:
        return cls(stub, RecordingSleep(), FakeClock())

    @property
    def name(self) -> str:
        return "openai" if isinstance(self.stub, OpenAIStub) else "anthropic"

    def model(
        self,
        *,
        timeout_s: float = 5.0,
        max_attempts: int = 3,
        threshold: int = 5,
        real_sleep: bool = False,
        base_url: str | None = None,
    ) -> ProviderModel:
        guard = ProviderGuard(
            timeout_s=timeout_s,
            retry=ProviderRetryPolicy(max_attempts=max_attempts),
            breaker=CircuitBreaker(
                failure_threshold=threshold, reset_timeout_s=30, clock=self.clock
            ),
            sleep=asyncio.sleep if real_sleep else self.sleep,
        )
        root = base_url or self.stub.base_url
        if isinstance(self.stub, OpenAIStub):
            return OpenAIModel(
                model_name="gpt-4o-mini", guard=guard, base_url=root + "/v1", api_key="sk-test"
            )
        return AnthropicModel(
            model_name="claude-haiku-4-5", guard=guard, base_url=root, api_key="sk-ant-test"
        )
