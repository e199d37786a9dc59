"""Both provider adapters against local HTTP stubs of their APIs: the behaviours they share.

Each test runs once against the OpenAI stub and once against the Anthropic stub, through the
official SDKs over real loopback sockets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from apex.llm import (
    BuiltinModel,
    ChatMessage,
    FallbackModel,
    LanguageModel,
    LanguageModelError,
    LlmFailureReason,
    LlmUsage,
    ProseDelta,
    ProseEnd,
    ProseEvent,
    ProseRestart,
    QuestionPlan,
    RequestCategory,
    plan_messages,
)
from apex.llm.resilience import CircuitState
from tests.support.llm_stubs import (
    BrokenStream,
    Delay,
    Failure,
    Provider,
    Structured,
    Text,
    Usage,
    pieces,
)
from tests.support.services import free_port


@pytest.fixture(params=["openai", "anthropic"])
def provider(request: pytest.FixtureRequest) -> Provider:
    return Provider.of(request.getfixturevalue(f"{request.param}_stub"))


async def collect(events: AsyncIterator[ProseEvent]) -> list[ProseEvent]:
    return [event async for event in events]


TRIAGE = {
    "category": "cost",
    "confidence": 0.9,
    "entities": {"models": ["gpt-4o"], "targets": [{"percent": 30, "text": "30%"}]},
}


async def test_prose_chat(provider: Provider) -> None:
    provider.stub.script(Text("Spend is **$12.50**.", Usage(120, 9, 100, 3)))
    model = provider.model()
    response = await model.chat([ChatMessage.system("Be brief."), ChatMessage.user("Summarize")])
    await model.aclose()
    assert response.text == "Spend is **$12.50**."
    assert response.output is None
    assert response.usage.input_tokens == 120 and response.usage.output_tokens == 9
    assert response.usage.cached_input_tokens == 100 and response.usage.requests == 1
    assert response.provider == provider.stub.__class__.__name__.removesuffix("Stub").lower()
    assert len(provider.stub.requests) == 1


async def test_structured_output_is_validated(provider: Provider) -> None:
    provider.stub.script(Structured(TRIAGE))
    model = provider.model()
    response = await model.chat(plan_messages("Cut gpt-4o costs by 30%"), output_type=QuestionPlan)
    await model.aclose()
    assert isinstance(response.output, QuestionPlan)
    assert response.output.category is RequestCategory.COST
    assert response.output.entities.models == ["gpt-4o"]


async def test_streaming_prose(provider: Provider) -> None:
    content = "Your p95 latency is driven by gpt-4o on chat."
    provider.stub.script(Text(content, Usage(200, 11, 50, 0)))
    model = provider.model()
    events = await collect(model.stream([ChatMessage.user("Why is p95 slow?")]))
    await model.aclose()
    deltas = [event.text for event in events if isinstance(event, ProseDelta)]
    assert deltas == pieces(content)
    end = events[-1]
    assert isinstance(end, ProseEnd)
    assert end.response.text == content
    assert end.response.usage == LlmUsage(
        input_tokens=200, output_tokens=11, cached_input_tokens=50, requests=1
    )
    assert end.response.ttft_ms is not None and end.response.ttft_ms <= end.response.latency_ms
    assert provider.stub.requests[0].body["stream"] is True


async def test_429_with_retry_after_then_success(provider: Provider) -> None:
    provider.stub.script(Failure(429, {"retry-after": "2"}), Text("ok"))
    model = provider.model()
    response = await model.chat([ChatMessage.user("hi")])
    await model.aclose()
    assert response.text == "ok"
    assert len(provider.stub.requests) == 2
    assert len(provider.sleep.delays) == 1 and 2.0 <= provider.sleep.delays[0] <= 3.0


async def test_retry_after_is_waited_for_real(provider: Provider) -> None:
    provider.stub.script(Failure(429, {"retry-after": "1"}), Text("ok"))
    model = provider.model(real_sleep=True)
    assert (await model.chat([ChatMessage.user("hi")])).text == "ok"
    await model.aclose()
    first, second = provider.stub.requests
    assert second.at - first.at >= 1.0


async def test_a_429_that_asks_for_too_long_is_not_retried(provider: Provider) -> None:
    provider.stub.script(Failure(429, {"retry-after": "600"}))
    model = provider.model()
    with pytest.raises(LanguageModelError) as caught:
        await model.chat([ChatMessage.user("hi")])
    await model.aclose()
    assert caught.value.reason is LlmFailureReason.RATE_LIMITED
    assert caught.value.provider_retry_after_s == 600
    assert len(provider.stub.requests) == 1 and provider.sleep.delays == []


@pytest.mark.parametrize("status", [500, 502, 503, 529])
async def test_5xx_is_retried_with_backoff(provider: Provider, status: int) -> None:
    provider.stub.script(Failure(status), Failure(status), Text("recovered"))
    model = provider.model()
    response = await model.chat([ChatMessage.user("hi")])
    await model.aclose()
    assert response.text == "recovered"
    assert len(provider.stub.requests) == 3
    first, second = provider.sleep.delays
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0


async def test_5xx_gives_up_after_max_attempts(provider: Provider) -> None:
    provider.stub.default = Failure(503)
    model = provider.model(max_attempts=3)
    with pytest.raises(LanguageModelError) as caught:
        await model.chat([ChatMessage.user("hi")])
    await model.aclose()
    assert caught.value.reason is LlmFailureReason.SERVER_ERROR
    assert caught.value.usage.requests == 3
    assert len(provider.stub.requests) == 3


async def test_4xx_is_final(provider: Provider) -> None:
    provider.stub.script(Failure(401))
    model = provider.model()
    with pytest.raises(LanguageModelError) as caught:
        await model.chat([ChatMessage.user("hi")])
    await model.aclose()
    assert caught.value.reason is LlmFailureReason.REJECTED and caught.value.provider_status == 401
    assert len(provider.stub.requests) == 1


async def test_timeouts_are_retried_then_reported(provider: Provider) -> None:
    provider.stub.default = Delay(3.0, Text("too late"))
    model = provider.model(timeout_s=0.3, max_attempts=2)
    with pytest.raises(LanguageModelError) as caught:
        await model.chat([ChatMessage.user("hi")])
    await model.aclose()
    assert caught.value.reason is LlmFailureReason.TIMEOUT
    assert len(provider.stub.requests) == 2


async def test_a_slow_answer_within_the_timeout_succeeds(provider: Provider) -> None:
    provider.stub.script(Delay(0.2, Text("fine")))
    model = provider.model(timeout_s=2)
    assert (await model.chat([ChatMessage.user("hi")])).text == "fine"
    await model.aclose()


async def test_connection_refused_is_a_connection_error(provider: Provider) -> None:
    model = provider.model(max_attempts=2, base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(LanguageModelError) as caught:
        await model.chat([ChatMessage.user("hi")])
    await model.aclose()
    assert caught.value.reason in {LlmFailureReason.CONNECTION_ERROR, LlmFailureReason.TIMEOUT}
    assert len(provider.sleep.delays) == 1


async def test_circuit_opens_then_half_opens(provider: Provider) -> None:
    provider.stub.default = Failure(503)
    model = provider.model(max_attempts=1, threshold=2)
    for _ in range(2):
        with pytest.raises(LanguageModelError):
            await model.chat([ChatMessage.user("hi")])
    assert model.guard.breaker.state is CircuitState.OPEN
    with pytest.raises(LanguageModelError) as caught:
        await model.chat([ChatMessage.user("hi")])
    assert caught.value.reason is LlmFailureReason.CIRCUIT_OPEN
    assert len(provider.stub.requests) == 2

    provider.clock.now += 30
    assert model.guard.breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(LanguageModelError) as caught:
        await model.chat([ChatMessage.user("probe fails")])
    assert caught.value.reason is LlmFailureReason.SERVER_ERROR
    assert model.guard.breaker.state is CircuitState.OPEN
    assert len(provider.stub.requests) == 3

    provider.clock.now += 30
    provider.stub.script(Text("back"))
    assert (await model.chat([ChatMessage.user("probe")])).text == "back"
    assert model.guard.breaker.state is CircuitState.CLOSED
    provider.stub.script(Text("again"))
    assert (await model.chat([ChatMessage.user("hi")])).text == "again"
    await model.aclose()


async def test_half_open_admits_one_probe_at_a_time(provider: Provider) -> None:
    provider.stub.default = Failure(503)
    model = provider.model(max_attempts=1, threshold=1)
    with pytest.raises(LanguageModelError):
        await model.chat([ChatMessage.user("hi")])
    provider.clock.now += 30
    provider.stub.script(Delay(0.3, Text("probe ok")))
    probe = asyncio.create_task(model.chat([ChatMessage.user("probe")]))
    while len(provider.stub.requests) < 2:
        await asyncio.sleep(0.01)
    with pytest.raises(LanguageModelError) as caught:
        await model.chat([ChatMessage.user("meanwhile")])
    assert caught.value.reason is LlmFailureReason.CIRCUIT_OPEN
    assert (await probe).text == "probe ok"
    await model.aclose()


async def test_invalid_json_is_retried_once_with_the_errors(provider: Provider) -> None:
    provider.stub.script(Structured("this is not json", Usage(50, 5)), Structured(TRIAGE))
    model = provider.model()
    response = await model.chat(plan_messages("Cut costs by 30%"), output_type=QuestionPlan)
    await model.aclose()
    assert response.output.category is RequestCategory.COST
    assert response.usage.requests == 2 and response.usage.input_tokens == 50 + 12
    correction = provider.stub.requests[1].body["messages"][-1]
    assert correction["role"] == "user"
    assert "did not match the required JSON schema" in str(correction["content"])


async def test_invalid_output_twice_fails_with_its_usage(provider: Provider) -> None:
    provider.stub.script(
        Structured({"category": "free beer"}, Usage(40, 4)),
        Structured({"confidence": 2}, Usage(41, 5)),
    )
    model = provider.model()
    with pytest.raises(LanguageModelError) as caught:
        await model.chat(plan_messages("hi"), output_type=QuestionPlan)
    await model.aclose()
    assert caught.value.reason is LlmFailureReason.INVALID_OUTPUT
    assert caught.value.usage == LlmUsage(input_tokens=81, output_tokens=9, requests=2)
    assert model.guard.breaker.state is CircuitState.CLOSED


async def test_an_empty_prose_answer_is_invalid(provider: Provider) -> None:
    provider.stub.script(Text("   "), Text(""))
    model = provider.model()
    with pytest.raises(LanguageModelError) as caught:
        await model.chat([ChatMessage.user("hi")])
    await model.aclose()
    assert caught.value.reason is LlmFailureReason.INVALID_OUTPUT


async def test_an_empty_stream_is_invalid_and_falls_back(provider: Provider) -> None:
    provider.stub.script(Text("", Usage(30, 0)))
    model = FallbackModel(provider.model(), BuiltinModel())
    events = await collect(model.stream([ChatMessage.user("Why is p95 slow?")]))
    await model.aclose()
    end = events[-1]
    assert isinstance(end, ProseEnd) and end.response.fallback is not None
    assert end.response.fallback.reason is LlmFailureReason.INVALID_OUTPUT
    assert end.response.fallback.usage == LlmUsage(input_tokens=30, requests=1)


async def test_stream_retries_before_the_first_piece(provider: Provider) -> None:
    provider.stub.script(Failure(503), Text("streamed after a retry"))
    model = provider.model()
    events = await collect(model.stream([ChatMessage.user("hi")]))
    await model.aclose()
    assert isinstance(events[-1], ProseEnd)
    assert events[-1].response.text == "streamed after a retry"
    assert len(provider.stub.requests) == 2


async def test_a_stream_that_breaks_off_raises(provider: Provider) -> None:
    provider.stub.script(BrokenStream("one two three four five", chunks=2))
    model = provider.model()
    seen: list[str] = []
    with pytest.raises(LanguageModelError) as caught:
        async for event in model.stream([ChatMessage.user("hi")]):
            if isinstance(event, ProseDelta):
                seen.append(event.text)
    await model.aclose()
    assert seen == ["one ", "two "]
    assert caught.value.reason is LlmFailureReason.CONNECTION_ERROR


async def test_fallback_to_builtin_reports_why(provider: Provider) -> None:
    provider.stub.default = Failure(503)
    model: LanguageModel = FallbackModel(provider.model(max_attempts=2), BuiltinModel())
    response = await model.chat(
        plan_messages("Why is my p95 latency so high?"), output_type=QuestionPlan
    )
    assert response.output.category is RequestCategory.LATENCY
    assert response.provider == "builtin"
    notice = response.fallback
    assert notice is not None and notice.reason is LlmFailureReason.SERVER_ERROR
    assert notice.usage.requests == 2
    assert "server error" in notice.describe() and notice.model_name in notice.describe()
    await model.aclose()


async def test_fallback_on_invalid_output_and_open_circuit(provider: Provider) -> None:
    provider.stub.script(Structured("nope"), Structured("still nope"))
    primary = provider.model(max_attempts=1, threshold=1)
    model = FallbackModel(primary, BuiltinModel())
    first = await model.chat(plan_messages("Cut costs"), output_type=QuestionPlan)
    assert first.fallback is not None
    assert first.fallback.reason is LlmFailureReason.INVALID_OUTPUT
    provider.stub.default = Failure(500)
    second = await model.chat(plan_messages("Cut costs"), output_type=QuestionPlan)
    assert second.fallback is not None
    assert second.fallback.reason is LlmFailureReason.SERVER_ERROR
    requests_so_far = len(provider.stub.requests)
    third = await model.chat(plan_messages("Cut costs"), output_type=QuestionPlan)
    assert third.fallback is not None
    assert third.fallback.reason is LlmFailureReason.CIRCUIT_OPEN
    assert third.output.category is RequestCategory.COST
    assert len(provider.stub.requests) == requests_so_far
    await model.aclose()


async def test_no_fallback_when_the_provider_answers(provider: Provider) -> None:
    provider.stub.script(Text("provider prose"))
    model = FallbackModel(provider.model(), BuiltinModel())
    response = await model.chat([ChatMessage.user("hi")])
    assert response.fallback is None and response.text == "provider prose"
    await model.aclose()


async def test_stream_falls_back_before_any_text(provider: Provider) -> None:
    provider.stub.default = Failure(400)
    model = FallbackModel(provider.model(), BuiltinModel())
    events = await collect(model.stream([ChatMessage.user("Why is my p95 latency so high?")]))
    await model.aclose()
    assert not any(isinstance(event, ProseRestart) for event in events)
    end = events[-1]
    assert isinstance(end, ProseEnd) and end.response.provider == "builtin"
    assert end.response.fallback is not None
    assert end.response.fallback.reason is LlmFailureReason.REJECTED
    assert "latency question" in end.response.text


async def test_stream_restarts_when_the_provider_breaks_mid_stream(provider: Provider) -> None:
    provider.stub.script(BrokenStream("half an answer that never ends", chunks=3))
    model = FallbackModel(provider.model(), BuiltinModel())
    events = await collect(model.stream([ChatMessage.user("Cut my costs")]))
    await model.aclose()
    restart = next(i for i, event in enumerate(events) if isinstance(event, ProseRestart))
    before = [e.text for e in events[:restart] if isinstance(e, ProseDelta)]
    after = [e.text for e in events[restart:] if isinstance(e, ProseDelta)]
    assert before == ["half ", "an ", "answer "]
    end = events[-1]
    assert isinstance(end, ProseEnd)
    assert "".join(after) == end.response.text
    assert end.response.fallback is not None
    assert end.response.fallback.reason is LlmFailureReason.CONNECTION_ERROR
    assert end.response.fallback.usage.requests == 1
