"""The app builds its language model from Settings and it talks to the configured endpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from apex.api.app import create_app
from apex.config import Settings
from apex.llm import (
    ChatMessage,
    LanguageModel,
    QuestionPlan,
    RequestCategory,
    plan_messages,
)
from tests.support.llm_stubs import Failure, LlmStub, Structured, Text

MakeSettings = Callable[..., Settings]


async def test_the_app_serves_the_builtin_engine_by_default(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    app = create_app(make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"))
    async with app.router.lifespan_context(app):
        model: LanguageModel = app.state.language_model
        response = await model.chat(
            plan_messages("Why is my p95 latency so high?"), output_type=QuestionPlan
        )
    assert model.provider == "builtin"
    assert response.output.category is RequestCategory.LATENCY


@pytest.mark.parametrize(("provider", "suffix"), [("openai", "/v1"), ("anthropic", "")])
async def test_a_configured_provider_is_used_and_falls_back(
    make_settings: MakeSettings,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    provider: str,
    suffix: str,
) -> None:
    stub: LlmStub = request.getfixturevalue(f"{provider}_stub")
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
        llm_provider=provider,
        llm_model="served-model",
        llm_base_url=stub.base_url + suffix,
        llm_api_key="secret",
        llm_max_attempts=1,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        model: LanguageModel = app.state.language_model
        stub.script(Structured({"category": "capacity"}), Text("provider prose"))
        classified = await model.chat(plan_messages("hmm"), output_type=QuestionPlan)
        prose = await model.chat([ChatMessage.user("hi")])
        stub.script(Failure(503))
        fell_back = await model.chat(plan_messages("Cut my costs by 30%"), output_type=QuestionPlan)
    assert classified.output.category is RequestCategory.CAPACITY and classified.fallback is None
    assert prose.text == "provider prose"
    assert fell_back.output.category is RequestCategory.COST
    assert fell_back.fallback is not None and fell_back.fallback.reason.value == "server_error"
    assert [r.body["model"] for r in stub.requests] == ["served-model"] * 3
    assert "secret" in str(stub.requests[0].headers)
