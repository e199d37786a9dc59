"""One round of tool choice through both provider adapters, against local stubs of their APIs.

Each shared test runs once against the OpenAI stub and once against the Anthropic stub, through
the official SDKs over real loopback sockets: the tools must leave in the provider's wire shape,
the calls must come back as `ToolCall`s, unusable calls are dropped and reported, a failing
provider falls back to the built-in engine (which chooses no tools) and the call is metered.
"""

from __future__ import annotations

from typing import Any

import pytest

from apex.llm import (
    BuiltinModel,
    ChatMessage,
    ChatSettings,
    FallbackModel,
    LanguageModel,
    LlmCallRecord,
    LlmFailureReason,
    LlmUsage,
    MeteredModel,
    RejectedToolCall,
    ToolCall,
    ToolSpec,
)
from apex.llm.provider import tool_call
from tests.support.llm_stubs import Failure, LlmStub, Provider, Text, ToolCalls, Usage

FEATURE = "apex"
WHAT_IF = ToolSpec(
    name="what_if",
    description="Project the cost of moving traffic to another model.",
    parameters={
        "type": "object",
        "properties": {
            "target_model": {"type": "string"},
            "models": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["target_model"],
    },
)
COMPARE = ToolSpec(
    name="compare",
    description="Compare cost, latency and errors of named models.",
    parameters={
        "type": "object",
        "properties": {
            "models": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        },
        "required": ["models"],
    },
)
TOOLS = (WHAT_IF, COMPARE)
QUESTION = [
    ChatMessage.system("Choose the tools that answer the question."),
    ChatMessage.user("What if gpt-4o moved to gpt-4o-mini, and how do they compare?"),
]


@pytest.fixture(params=["openai", "anthropic"])
def provider(request: pytest.FixtureRequest) -> Provider:
    return Provider.of(request.getfixturevalue(f"{request.param}_stub"))


def recorder(records: list[LlmCallRecord]) -> Any:
    async def record(call: LlmCallRecord) -> None:
        records.append(call)

    return record


async def sent_body(stub: LlmStub, max_tokens: int) -> dict[str, Any]:
    """The one request body the adapter sent when offering `TOOLS`."""
    stub.script(Text("no tool needed"))
    model = Provider.of(stub).model()
    await model.call_tools(QUESTION, TOOLS, settings=ChatSettings(max_tokens=max_tokens))
    await model.aclose()
    (request,) = stub.requests
    return request.body


async def test_openai_receives_function_tools(openai_stub: LlmStub) -> None:
    body = await sent_body(openai_stub, max_tokens=256)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in TOOLS
    ]
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True
    assert body["max_completion_tokens"] == 256
    assert body["messages"][-1] == {"role": "user", "content": QUESTION[-1].content}
    assert "response_format" not in body


async def test_anthropic_receives_input_schemas(anthropic_stub: LlmStub) -> None:
    body = await sent_body(anthropic_stub, max_tokens=256)
    assert body["tools"] == [
        {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
        for tool in TOOLS
    ]
    assert body["tool_choice"] == {"type": "auto"}
    assert body["max_tokens"] == 256
    assert body["system"] == QUESTION[0].content
    assert body["messages"] == [{"role": "user", "content": QUESTION[-1].content}]


async def test_several_calls_in_one_answer_parse_in_order(provider: Provider) -> None:
    chosen = [
        ("what_if", {"target_model": "gpt-4o-mini", "models": ["gpt-4o"]}),
        ("compare", {"models": ["gpt-4o", "gpt-4o-mini"]}),
        ("what_if", {"target_model": "claude-haiku-4-5"}),
    ]
    provider.stub.script(
        ToolCalls(chosen, Usage(input_tokens=640, output_tokens=88), text="Running both.")
    )
    model = provider.model()
    response = await model.call_tools(QUESTION, TOOLS)
    await model.aclose()
    assert response.tool_calls == tuple(
        ToolCall(provider.stub.call_id(i), name, arguments)
        for i, (name, arguments) in enumerate(chosen)
    )
    assert response.rejected_tool_calls == ()
    assert response.text == "Running both."
    assert response.output is None and response.fallback is None
    assert response.usage == LlmUsage(input_tokens=640, output_tokens=88, requests=1)
    assert response.provider == provider.name


async def test_a_text_answer_has_no_calls(provider: Provider) -> None:
    provider.stub.script(Text("Hello! Ask me about your spend."))
    model = provider.model()
    response = await model.call_tools([ChatMessage.user("hi")], TOOLS)
    await model.aclose()
    assert response.tool_calls == () and response.rejected_tool_calls == ()
    assert response.text == "Hello! Ask me about your spend."


async def test_malformed_calls_are_dropped_and_reported(provider: Provider) -> None:
    good = ("compare", {"models": ["gpt-4o", "o3"]})
    provider.stub.script(
        ToolCalls(
            [
                ("what_if", '{"target_model": "gpt-4o-mini"'),
                good,
                ("compare", '["gpt-4o", "o3"]'),
                ("drop_tables", {"all": True}),
            ],
            Usage(input_tokens=500, output_tokens=60),
        )
    )
    model = provider.model()
    response = await model.call_tools(QUESTION, TOOLS)
    await model.aclose()
    assert response.tool_calls == (ToolCall(provider.stub.call_id(1), *good),)
    # OpenAI sends arguments as JSON text; Anthropic sends an object, so text is never one
    truncated = (
        "arguments are not valid JSON"
        if provider.name == "openai"
        else "arguments are not a JSON object"
    )
    assert response.rejected_tool_calls == (
        RejectedToolCall(provider.stub.call_id(0), "what_if", truncated),
        RejectedToolCall(provider.stub.call_id(2), "compare", "arguments are not a JSON object"),
        RejectedToolCall(provider.stub.call_id(3), "drop_tables", "not one of the offered tools"),
    )
    assert response.usage == LlmUsage(input_tokens=500, output_tokens=60, requests=1)
    assert len(provider.stub.requests) == 1


async def test_a_503_falls_back_to_the_builtin_engine_with_no_calls(provider: Provider) -> None:
    provider.stub.default = Failure(503)
    model: LanguageModel = FallbackModel(provider.model(max_attempts=2), BuiltinModel())
    response = await model.call_tools(QUESTION, TOOLS)
    await model.aclose()
    assert response.provider == "builtin"
    assert response.tool_calls == () and response.rejected_tool_calls == ()
    notice = response.fallback
    assert notice is not None and notice.reason is LlmFailureReason.SERVER_ERROR
    assert notice.provider == provider.name and notice.usage.requests == 2
    assert len(provider.stub.requests) == 2


async def test_metering_records_the_call(provider: Provider) -> None:
    provider.stub.script(
        ToolCalls(
            [("what_if", {"target_model": "gpt-4o-mini"})],
            Usage(input_tokens=900, output_tokens=40, cached_input_tokens=512),
        )
    )
    records: list[LlmCallRecord] = []
    model = MeteredModel(provider.model(), recorder(records), feature=FEATURE)
    response = await model.call_tools(QUESTION, TOOLS)
    await model.aclose()
    (record,) = records
    assert (
        record.usage
        == response.usage
        == LlmUsage(input_tokens=900, output_tokens=40, cached_input_tokens=512, requests=1)
    )
    assert (record.provider, record.model) == (response.provider, response.model_name)
    assert (record.operation, record.status, record.error_type) == ("chat", "ok", None)
    assert record.feature == FEATURE and record.ttft_ms is None


async def test_metering_records_a_failed_provider_behind_the_fallback(provider: Provider) -> None:
    provider.stub.default = Failure(503)
    records: list[LlmCallRecord] = []
    model = MeteredModel(
        FallbackModel(provider.model(max_attempts=3), BuiltinModel()),
        recorder(records),
        feature=FEATURE,
    )
    response = await model.call_tools(QUESTION, TOOLS)
    await model.aclose()
    assert response.fallback is not None
    (record,) = records
    assert (record.provider, record.status, record.error_type) == (
        provider.name,
        "error",
        LlmFailureReason.SERVER_ERROR.value,
    )
    assert record.usage == LlmUsage(requests=len(provider.stub.requests))


async def test_a_bad_tool_list_fails_before_any_request(provider: Provider) -> None:
    model = provider.model()
    for tools in [(), (WHAT_IF, WHAT_IF)]:
        with pytest.raises(ValueError):
            await model.call_tools(QUESTION, tools)
    await model.aclose()
    assert provider.stub.requests == []


async def test_the_builtin_engine_chooses_no_tools() -> None:
    model = BuiltinModel()
    response = await model.call_tools(QUESTION, TOOLS)
    assert response.tool_calls == () and response.rejected_tool_calls == ()
    assert response.text == "" and response.usage == LlmUsage()
    with pytest.raises(ValueError):
        await model.call_tools(QUESTION, ())


def test_a_call_without_id_or_with_decoded_arguments_is_still_read() -> None:
    arguments = {"models": ["gpt-4o", "o3"]}
    assert tool_call(TOOLS, 2, None, "compare", arguments, json_text=True) == ToolCall(
        "call_2", "compare", arguments
    )
    assert tool_call(TOOLS, 0, "", "what_if", "{}") == RejectedToolCall(
        "call_0", "what_if", "arguments are not a JSON object"
    )


@pytest.mark.parametrize(
    "name, parameters",
    [
        ("what if", {"type": "object"}),
        ("", {"type": "object"}),
        ("x" * 65, {"type": "object"}),
        ("what_if", {"type": "array"}),
        ("what_if", {}),
    ],
)
def test_tool_specs_the_providers_would_refuse_are_rejected(
    name: str, parameters: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        ToolSpec(name=name, description="d", parameters=parameters)


def test_every_model_and_wrapper_offers_tools() -> None:
    builtin = BuiltinModel()
    for model in [
        builtin,
        FallbackModel(builtin, builtin),
        MeteredModel(builtin, recorder([]), feature=FEATURE),
    ]:
        assert isinstance(model, LanguageModel)
