"""The chat understands a request to set a budget: it answers the `budget` intent with what
that budget would do and where to create it, and creates nothing itself."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.accounts import make_user
from tests.support.run_harness import wait_until_ended


async def ask(client: httpx.AsyncClient, headers: dict[str, str], text: str) -> dict[str, Any]:
    """The report of one question, asked in a thread of its own."""
    thread = (await client.post("/api/threads", headers=headers)).json()
    started = await client.post(
        "/api/runs", json={"text": text, "thread_id": thread["id"]}, headers=headers
    )
    assert started.status_code == 202, started.text
    run = await wait_until_ended(client, headers, started.json()["run_id"], timeout=60)
    assert run["state"] == "completed", run
    return dict(run["report"])


@pytest.mark.parametrize(
    ("text", "per", "amount"),
    [
        ("set a $2,000 monthly budget for gpt-4o", "monthly", "$2,000.00"),
        ("Create a budget of $50 a day for gpt-4o", "daily", "$50.00"),
    ],
)
async def test_a_budget_request_is_described_and_linked_but_not_created(
    app: FastAPI, client: httpx.AsyncClient, text: str, per: str, amount: str
) -> None:
    _user, headers = await make_user(app)
    loaded = await client.post("/api/usage/demo", json={"rows": 3_000, "seed": 3}, headers=headers)
    assert loaded.status_code in (200, 201, 202)
    report = await ask(client, headers, text)
    assert report["question"]["intent"] == "budget"
    assert report["question"]["models"] == ["gpt-4o"]
    headline = report["answer"]["headline"]
    assert f"A {per} budget of {amount} on gpt-4o" in headline
    assert "(#/budgets)" in headline and "does not create budgets" in headline
    assert set(report["answer"]["figures"]) == {
        "budget_usd",
        "current_monthly_usd",
        "after_recommendations_monthly_usd",
        "fits",
    }
    assert (await client.get("/api/budgets", headers=headers)).json() == {"items": []}


async def test_checking_spend_against_a_budget_does_not_offer_to_create_one(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _user, headers = await make_user(app)
    await client.post("/api/usage/demo", json={"rows": 3_000, "seed": 3}, headers=headers)
    report = await ask(client, headers, "we have $5k a month, do we fit")
    assert report["question"]["intent"] == "budget"
    assert "#/budgets" not in report["answer"]["headline"]
