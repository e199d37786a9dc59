"""What the Anthropic adapter puts on the wire, and how it reads Anthropic's usage."""

from __future__ import annotations

from apex.llm import ChatMessage, ChatSettings, LlmUsage, ProseEnd, QuestionPlan
from apex.llm.anthropic import OUTPUT_TOOL, AnthropicModel
from apex.llm.resilience import ProviderGuard
from tests.support.llm_stubs import LlmStub, Structured, Text, Usage


def model(stub: LlmStub) -> AnthropicModel:
    return AnthropicModel(
        model_name="claude-haiku-4-5",
        guard=ProviderGuard(timeout_s=5),
        base_url=stub.base_url,
        api_key="sk-ant-test",
    )


async def test_structured_request_forces_the_output_tool(anthropic_stub: LlmStub) -> None:
    anthropic_stub.script(Structured({"category": "model_selection"}))
    adapter = model(anthropic_stub)
    response = await adapter.chat(
        [ChatMessage.system("Classify."), ChatMessage.user("Which model?")],
        output_type=QuestionPlan,
        settings=ChatSettings(max_tokens=400),
    )
    await adapter.aclose()
    assert response.output.category.value == "model_selection"
    (request,) = anthropic_stub.requests
    assert request.path == "/v1/messages"
    assert "anthropic-version" in request.headers
    assert "sk-ant-test" in (
        request.headers.get("x-api-key", "") + request.headers.get("authorization", "")
    )
    body = request.body
    assert body["system"] == "Classify."
    assert body["messages"] == [{"role": "user", "content": "Which model?"}]
    assert body["max_tokens"] == 400
    assert body["tools"] == [
        {
            "name": OUTPUT_TOOL,
            "description": QuestionPlan.__doc__.strip(),
            "input_schema": QuestionPlan.model_json_schema(),
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": OUTPUT_TOOL}


async def test_json_in_a_text_block_is_accepted(anthropic_stub: LlmStub) -> None:
    anthropic_stub.script(Text('{"category": "reporting"}'))
    adapter = model(anthropic_stub)
    response = await adapter.chat([ChatMessage.user("report")], output_type=QuestionPlan)
    await adapter.aclose()
    assert response.output.category.value == "reporting"


async def test_usage_adds_cache_reads_and_writes_back_to_input(anthropic_stub: LlmStub) -> None:
    anthropic_stub.script(
        Text(
            "x",
            Usage(
                input_tokens=2_000,
                output_tokens=500,
                cached_input_tokens=1_200,
                reasoning_tokens=320,
                cache_write_tokens=300,
            ),
        )
    )
    adapter = model(anthropic_stub)
    response = await adapter.chat([ChatMessage.user("hi")])
    await adapter.aclose()
    assert response.usage == LlmUsage(
        input_tokens=2_000,
        output_tokens=500,
        cached_input_tokens=1_200,
        cache_write_input_tokens=300,
        reasoning_tokens=320,
        requests=1,
    )


async def test_stream_usage_comes_from_start_and_delta_events(anthropic_stub: LlmStub) -> None:
    anthropic_stub.script(Text("streamed words here", Usage(900, 42, 600, 7)))
    adapter = model(anthropic_stub)
    events = [
        event async for event in adapter.stream([ChatMessage.system("s"), ChatMessage.user("hi")])
    ]
    await adapter.aclose()
    end = events[-1]
    assert isinstance(end, ProseEnd) and end.response.text == "streamed words here"
    assert end.response.usage == LlmUsage(
        input_tokens=900, output_tokens=42, cached_input_tokens=600, reasoning_tokens=7, requests=1
    )
    assert anthropic_stub.requests[0].body["stream"] is True
    assert anthropic_stub.requests[0].body["system"] == "s"
