"""Self-metering: every provider call reaches the injected recorder with the right token counts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from apex.analytics.filters import OWN_CALLS_FEATURE
from apex.llm import (
    BuiltinModel,
    ChatMessage,
    FallbackModel,
    LanguageModelError,
    LlmCallRecord,
    LlmFailureReason,
    LlmUsage,
    MeteredModel,
    ProseEnd,
    QuestionPlan,
    plan_messages,
)
from apex.llm.anthropic import AnthropicModel
from apex.llm.openai import OpenAIModel
from apex.llm.resilience import CircuitBreaker, ProviderGuard, ProviderRetryPolicy
from tests.support.llm_stubs import Failure, LlmStub, Structured, Text, Usage


class Ledger:
    def __init__(self) -> None:
        self.records: list[LlmCallRecord] = []

    async def __call__(self, record: LlmCallRecord) -> None:
        self.records.append(record)


async def no_sleep(seconds: float) -> None:
    return None


def guard(max_attempts: int = 3, threshold: int = 5) -> ProviderGuard:
    return ProviderGuard(
        timeout_s=5,
        retry=ProviderRetryPolicy(max_attempts=max_attempts),
        breaker=CircuitBreaker(failure_threshold=threshold),
        sleep=no_sleep,
    )


def openai_model(stub: LlmStub, **kwargs: int) -> OpenAIModel:
    return OpenAIModel(
        model_name="gpt-4o-mini", guard=guard(**kwargs), base_url=stub.base_url + "/v1", api_key="k"
    )


def anthropic_model(stub: LlmStub, **kwargs: int) -> AnthropicModel:
    return AnthropicModel(
        model_name="claude-haiku-4-5", guard=guard(**kwargs), base_url=stub.base_url, api_key="k"
    )


async def test_a_successful_call_is_recorded_with_its_tokens(openai_stub: LlmStub) -> None:
    openai_stub.script(Text("x", Usage(1_500, 220, 1_024, 64)))
    ledger = Ledger()
    model = MeteredModel(openai_model(openai_stub), ledger, feature=OWN_CALLS_FEATURE)
    before = datetime.now(UTC)
    response = await model.chat([ChatMessage.user("hi")])
    await model.aclose()
    (record,) = ledger.records
    assert (
        record.usage
        == response.usage
        == LlmUsage(1_500, 220, cached_input_tokens=1_024, reasoning_tokens=64, requests=1)
    )
    assert (record.provider, record.model, record.operation) == ("openai", "gpt-4o-mini", "chat")
    assert (record.status, record.error_type, record.feature) == ("ok", None, "apex")
    assert before <= record.timestamp <= datetime.now(UTC)
    assert record.latency_ms > 0 and record.ttft_ms is None


async def test_a_stream_is_recorded_once_with_ttft(anthropic_stub: LlmStub) -> None:
    anthropic_stub.script(Text("a b c", Usage(300, 30, 100, 0)))
    ledger = Ledger()
    model = MeteredModel(anthropic_model(anthropic_stub), ledger, feature=OWN_CALLS_FEATURE)
    events = [event async for event in model.stream([ChatMessage.user("hi")])]
    await model.aclose()
    assert isinstance(events[-1], ProseEnd)
    (record,) = ledger.records
    assert record.usage == LlmUsage(300, 30, cached_input_tokens=100, requests=1)
    assert record.provider == "anthropic" and record.ttft_ms is not None


async def test_a_failed_provider_behind_a_fallback_is_recorded_as_an_error(
    anthropic_stub: LlmStub,
) -> None:
    anthropic_stub.script(
        Structured("not json", Usage(400, 40)), Structured({"category": "nonsense"}, Usage(410, 41))
    )
    ledger = Ledger()
    model = MeteredModel(
        FallbackModel(anthropic_model(anthropic_stub), BuiltinModel()),
        ledger,
        feature=OWN_CALLS_FEATURE,
    )
    response = await model.chat(plan_messages("Cut my costs"), output_type=QuestionPlan)
    await model.aclose()
    assert response.fallback is not None and response.provider == "builtin"
    (record,) = ledger.records
    assert (record.status, record.error_type) == ("error", "invalid_output")
    assert record.usage == LlmUsage(input_tokens=810, output_tokens=81, requests=2)
    assert record.model == "claude-haiku-4-5"


async def test_retries_are_counted_as_requests(openai_stub: LlmStub) -> None:
    openai_stub.script(Failure(503), Failure(429, {"retry-after": "0"}), Text("ok", Usage(10, 2)))
    ledger = Ledger()
    model = MeteredModel(openai_model(openai_stub), ledger, feature=OWN_CALLS_FEATURE)
    await model.chat([ChatMessage.user("hi")])
    openai_stub.default = Failure(500)
    model_with_fallback = MeteredModel(
        FallbackModel(model.model, BuiltinModel()), ledger, feature=OWN_CALLS_FEATURE
    )
    await model_with_fallback.chat([ChatMessage.user("hi")])
    await model.aclose()
    ok, failed = ledger.records
    assert ok.usage == LlmUsage(10, 2, requests=1) and ok.status == "ok"
    assert failed.usage == LlmUsage(requests=3) and failed.error_type == "server_error"


async def test_a_provider_error_without_fallback_is_recorded_then_raised(
    openai_stub: LlmStub,
) -> None:
    openai_stub.default = Failure(401)
    ledger = Ledger()
    model = MeteredModel(openai_model(openai_stub), ledger, feature=OWN_CALLS_FEATURE)
    try:
        await model.chat([ChatMessage.user("hi")])
    except LanguageModelError as error:
        assert error.reason is LlmFailureReason.REJECTED
    else:
        raise AssertionError("the provider error must propagate")
    await model.aclose()
    (record,) = ledger.records
    assert (record.status, record.error_type, record.usage.requests) == ("error", "rejected", 1)


async def test_calls_that_reach_no_provider_are_not_recorded(openai_stub: LlmStub) -> None:
    openai_stub.default = Failure(503)
    ledger = Ledger()
    primary = openai_model(openai_stub, max_attempts=1, threshold=1)
    model = MeteredModel(FallbackModel(primary, BuiltinModel()), ledger, feature=OWN_CALLS_FEATURE)
    await model.chat([ChatMessage.user("hi")])
    await model.chat([ChatMessage.user("hi")])
    builtin_only = MeteredModel(BuiltinModel(), ledger, feature=OWN_CALLS_FEATURE)
    await builtin_only.chat(plan_messages("Cut costs"), output_type=QuestionPlan)
    await model.aclose()
    assert len(ledger.records) == 1
    assert ledger.records[0].error_type == "server_error"


async def test_a_failing_recorder_never_fails_the_call(openai_stub: LlmStub) -> None:
    openai_stub.script(Text("still answered"))

    async def broken(record: LlmCallRecord) -> None:
        raise RuntimeError("ledger down")

    model = MeteredModel(openai_model(openai_stub), broken, feature=OWN_CALLS_FEATURE)
    assert (await model.chat([ChatMessage.user("hi")])).text == "still answered"
    await model.aclose()


async def test_each_run_records_only_its_own_calls(openai_stub: LlmStub) -> None:
    openai_stub.default = Text("shared", Usage(5, 1))
    shared = openai_model(openai_stub)
    ledgers = [Ledger() for _ in range(4)]
    runs = [MeteredModel(shared, ledger, feature=OWN_CALLS_FEATURE) for ledger in ledgers]
    await asyncio.gather(
        *(
            run.chat([ChatMessage.user(f"run {i}")])
            for i, run in enumerate(runs)
            for _ in range(i + 1)
        )
    )
    await shared.aclose()
    assert [len(ledger.records) for ledger in ledgers] == [1, 2, 3, 4]
    assert all(
        record.usage == LlmUsage(5, 1, requests=1)
        for ledger in ledgers
        for record in ledger.records
    )
