"""What the OpenAI-compatible adapter puts on the wire, and how it reads OpenAI's usage."""

from __future__ import annotations

import pytest

from apex.llm import ChatMessage, ChatSettings, LlmUsage, ProseEnd, QuestionPlan
from apex.llm.openai import OpenAIModel
from apex.llm.resilience import ProviderGuard
from tests.support.llm_stubs import LlmStub, Structured, Text, Usage


def model(stub: LlmStub, api_key: str | None = "sk-test") -> OpenAIModel:
    return OpenAIModel(
        model_name="gpt-4o-mini",
        guard=ProviderGuard(timeout_s=5),
        base_url=stub.base_url + "/v1",
        api_key=api_key,
    )


async def test_structured_request_uses_json_schema(openai_stub: LlmStub) -> None:
    openai_stub.script(Structured({"category": "latency"}))
    adapter = model(openai_stub)
    await adapter.chat(
        [ChatMessage.system("Classify."), ChatMessage.user("p95?")],
        output_type=QuestionPlan,
        settings=ChatSettings(max_tokens=300),
    )
    await adapter.aclose()
    (request,) = openai_stub.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = request.body
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "Classify."},
        {"role": "user", "content": "p95?"},
    ]
    assert body["max_completion_tokens"] == 300
    assert "temperature" not in body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "QuestionPlan",
            "schema": QuestionPlan.model_json_schema(),
            "strict": False,
        },
    }


async def test_prose_request_has_no_response_format(openai_stub: LlmStub) -> None:
    openai_stub.script(Text("hello"))
    adapter = model(openai_stub)
    await adapter.chat([ChatMessage.user("hi")], settings=ChatSettings(temperature=0.0))
    await adapter.aclose()
    body = openai_stub.requests[0].body
    assert "response_format" not in body and body["temperature"] == 0.0


async def test_usage_maps_cached_and_reasoning_tokens(openai_stub: LlmStub) -> None:
    openai_stub.script(
        Text(
            "x",
            Usage(
                input_tokens=1_000, output_tokens=300, cached_input_tokens=768, reasoning_tokens=256
            ),
        )
    )
    adapter = model(openai_stub)
    response = await adapter.chat([ChatMessage.user("hi")])
    await adapter.aclose()
    assert response.usage == LlmUsage(
        input_tokens=1_000,
        output_tokens=300,
        cached_input_tokens=768,
        reasoning_tokens=256,
        requests=1,
    )


async def test_stream_asks_for_usage(openai_stub: LlmStub) -> None:
    openai_stub.script(Text("a streamed answer", Usage(40, 3, 0, 1)))
    adapter = model(openai_stub)
    events = [event async for event in adapter.stream([ChatMessage.user("hi")])]
    await adapter.aclose()
    assert openai_stub.requests[0].body["stream_options"] == {"include_usage": True}
    end = events[-1]
    assert isinstance(end, ProseEnd)
    assert end.response.usage == LlmUsage(
        40, 3, cached_input_tokens=0, reasoning_tokens=1, requests=1
    )


@pytest.mark.parametrize(
    "wrapped",
    [
        '```json\n{"category": "capacity"}\n```',
        '```\n{"category": "capacity"}\n```',
    ],
)
async def test_fenced_json_from_local_models_is_accepted(
    openai_stub: LlmStub, wrapped: str
) -> None:
    openai_stub.script(Structured(wrapped))
    adapter = model(openai_stub)
    response = await adapter.chat([ChatMessage.user("429s")], output_type=QuestionPlan)
    await adapter.aclose()
    assert response.output.category.value == "capacity"
    assert len(openai_stub.requests) == 1


async def test_servers_without_keys_work(openai_stub: LlmStub) -> None:
    openai_stub.script(Text("from a local server"))
    adapter = model(openai_stub, api_key=None)
    assert (await adapter.chat([ChatMessage.user("hi")])).text == "from a local server"
    await adapter.aclose()
    assert openai_stub.requests[0].headers["authorization"] == "Bearer not-needed"
