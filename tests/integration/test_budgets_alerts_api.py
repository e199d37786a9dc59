"""Budgets and alerts over HTTP on planted usage: spend, projection and state of each budget, the
alerts the data calls for (computed here from the rows), raised once however often evaluated,
cursor pagination, read marks, and the error shape for malformed, oversized, foreign and
hostile input."""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from apex.monitoring.budgets import MIN_ELAPSED, PROJECTION_ALERT_AFTER
from apex.store.repositories.webhooks import WebhookRepository
from tests.support.accounts import make_user
from tests.support.alert_data import (
    expected_anomalies,
    midnight,
    planted_csv,
    planted_rows,
    spend_between,
)

MICRO = Decimal("0.000001")


def month_window(now: datetime) -> tuple[datetime, datetime]:
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    return start, (start + timedelta(days=32)).replace(day=1)


async def upload(client: httpx.AsyncClient, headers: dict[str, str], data: bytes) -> None:
    answer = await client.post(
        "/api/usage/uploads", headers=headers, files={"file": ("usage.csv", data, "text/csv")}
    )
    assert answer.status_code == 200 and answer.json()["rows_rejected"] == 0, answer.text


async def all_alerts(
    client: httpx.AsyncClient, headers: dict[str, str], limit: int = 100
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/alerts", params=params, headers=headers)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def settled_alerts(
    app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str], count: int
) -> list[dict[str, Any]]:
    """The alerts once at least `count` are raised and no evaluation is under way."""
    async with asyncio.timeout(30):
        while len(await all_alerts(client, headers)) < count:
            await asyncio.sleep(0.05)
    await app.state.monitoring.triggers.wait_idle()
    return await all_alerts(client, headers)


async def test_planted_usage_raises_exactly_the_expected_alerts_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user_id, headers = await make_user(app)
    now = datetime.now(UTC)
    rows = planted_rows(now)
    await upload(client, headers, planted_csv(now))

    anomalies = expected_anomalies(rows, now)
    assert {(a.dimension, a.name) for a in anomalies} == {
        ("model", "gpt-4o"),
        ("feature", "classify"),
    }
    raised = await settled_alerts(app, client, headers, len(anomalies))
    assert sorted(
        (str(a["scope"]), a["value_usd"]) for a in raised if a["kind"] == "anomaly"
    ) == sorted((str({f"{a.dimension}s": [a.name]}), float(a.spend)) for a in anomalies)
    for alert in raised:
        bound = next(a.bound for a in anomalies if {f"{a.dimension}s": [a.name]} == alert["scope"])
        assert abs(alert["threshold_usd"] - bound) < 1e-6
        assert alert["read_at"] is None and alert["budget_id"] is None

    month_start, month_end = month_window(now)
    month_spend = spend_between(rows, month_start, month_end, model="gpt-4o")
    month_amount = (month_spend / Decimal("0.85")).quantize(Decimal("0.01"))
    today_spend = spend_between(
        rows, midnight(now.date()), midnight(now.date()) + timedelta(days=1)
    )
    created = []
    for body in (
        {
            "name": "gpt-4o monthly",
            "amount_usd": float(month_amount),
            "period": "month",
            "scope": {"models": ["gpt-4o"]},
        },
        {"name": "everything today", "amount_usd": 5, "period": "day"},
        {
            "name": "chat",
            "amount_usd": 1_000_000,
            "period": "month",
            "scope": {"features": ["chat"]},
            "thresholds_pct": [90],
        },
    ):
        answer = await client.post("/api/budgets", json=body, headers=headers)
        assert answer.status_code == 201, answer.text
        created.append(answer.json())
    monthly, daily, chat = created
    assert monthly["thresholds_pct"] == [50, 80, 100]
    assert monthly["scope"] == {"models": ["gpt-4o"], "providers": [], "features": []}

    listed = {
        b["id"]: b for b in (await client.get("/api/budgets", headers=headers)).json()["items"]
    }
    assert set(listed) == {monthly["id"], daily["id"], chat["id"]}
    assert listed[monthly["id"]]["spent_usd"] == float(month_spend)
    assert listed[daily["id"]]["spent_usd"] == float(today_spend)
    assert listed[daily["id"]]["state"] == "exceeded"
    assert listed[chat["id"]]["state"] == "ok"

    elapsed = max(now - month_start, MIN_ELAPSED)
    length = month_end - month_start
    projected = month_spend * Decimal(length.total_seconds()) / Decimal(elapsed.total_seconds())
    assert abs(listed[monthly["id"]]["projected_usd"] - float(projected)) < 0.01
    expect_projected = (
        projected > month_amount
        and Decimal((now - month_start).total_seconds()) / Decimal(length.total_seconds())
        >= PROJECTION_ALERT_AFTER
    )
    top = max(p for p in (50, 80, 100) if month_spend * 100 >= month_amount * p)
    expected_budget_alerts = {
        (
            "budget_threshold",
            monthly["id"],
            float(month_spend),
            float((month_amount * top / 100).quantize(MICRO)),
        ),
        ("budget_threshold", daily["id"], float(today_spend), 5.0),
    }
    assert listed[monthly["id"]]["state"] == "warning"

    total = len(anomalies) + len(expected_budget_alerts) + int(expect_projected)
    raised = await settled_alerts(app, client, headers, total)
    assert {
        (a["kind"], a["budget_id"], a["value_usd"], a["threshold_usd"])
        for a in raised
        if a["kind"] == "budget_threshold"
    } == expected_budget_alerts
    # the projection moves with the clock: it was made a moment after `now`
    assert [
        (a["budget_id"], a["threshold_usd"]) for a in raised if a["kind"] == "budget_projected"
    ] == ([(monthly["id"], float(month_amount))] if expect_projected else [])
    for alert in raised:
        if alert["kind"] == "budget_projected":
            assert float(month_amount) < alert["value_usd"] <= float(projected)
            assert alert["value_usd"] == pytest.approx(float(projected), rel=1e-3)
    assert len(raised) == total

    # evaluated again, by commit, by schedule and directly: nothing is raised twice
    assert await app.state.monitoring.evaluator.evaluate(user_id) == []
    assert await app.state.monitoring.schedule.run_round() == 0
    await upload(client, headers, planted_csv(now))
    await app.state.monitoring.triggers.wait_idle()
    assert len(await all_alerts(client, headers)) == total

    pages = await all_alerts(client, headers, limit=1)
    assert [a["id"] for a in pages] == [a["id"] for a in raised]
    assert [a["created_at"] for a in pages] == sorted(
        (a["created_at"] for a in pages), reverse=True
    )
    first = pages[0]["id"]
    before = (await client.get("/api/alerts", headers=headers)).json()["unread_count"]
    assert before == total
    for _ in range(2):
        read = await client.post(f"/api/alerts/{first}/read", headers=headers)
        assert read.status_code == 204
    after = (await client.get("/api/alerts", headers=headers)).json()
    assert after["unread_count"] == total - 1
    assert next(a for a in after["items"] if a["id"] == first)["read_at"].endswith("Z")

    patched = await client.patch(
        f"/api/budgets/{chat['id']}",
        json={"amount_usd": 0.5, "name": "chat, tighter"},
        headers=headers,
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "chat, tighter" and patched.json()["state"] == "exceeded"
    assert (await client.delete(f"/api/budgets/{chat['id']}", headers=headers)).status_code == 204
    assert (await client.get(f"/api/budgets/{chat['id']}", headers=headers)).status_code == 404


async def test_other_users_budgets_alerts_and_webhooks_are_not_found(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    owner_id, owner = await make_user(app)
    _other_id, other = await make_user(app)
    budget = (
        await client.post(
            "/api/budgets", json={"name": "b", "amount_usd": 0.01, "period": "day"}, headers=owner
        )
    ).json()
    hook = (
        await client.post(
            "/api/webhooks",
            json={"url": "https://hooks.example.com/hook", "secret": "s" * 16},
            headers=owner,
        )
    ).json()
    await upload(client, owner, planted_csv(datetime.now(UTC)))
    await app.state.monitoring.evaluator.evaluate(owner_id)
    alert = (await all_alerts(client, owner))[0]
    for method, path, body in (
        ("GET", f"/api/budgets/{budget['id']}", None),
        ("PATCH", f"/api/budgets/{budget['id']}", {"name": "mine now"}),
        ("DELETE", f"/api/budgets/{budget['id']}", None),
        ("POST", f"/api/alerts/{alert['id']}/read", None),
        ("DELETE", f"/api/webhooks/{hook['id']}", None),
        ("GET", f"/api/webhooks/{hook['id']}/deliveries", None),
        ("GET", "/api/budgets/no-such-id", None),
        ("POST", "/api/alerts/x%27%20OR%20%271%27%3D%271/read", None),
    ):
        answer = await client.request(method, path, json=body, headers=other)
        assert answer.status_code == 404, (method, path, answer.text)
        assert set(answer.json()["error"]) == {"code", "message", "details"}
    assert (await client.get("/api/budgets", headers=other)).json() == {"items": []}
    assert (await client.get("/api/webhooks", headers=other)).json() == {"items": []}
    assert (await all_alerts(client, other)) == []
    assert (await client.get(f"/api/budgets/{budget['id']}", headers=owner)).json()["name"] == "b"
    assert all(a["read_at"] is None for a in await all_alerts(client, owner))
    for path in ("/api/budgets", "/api/alerts", "/api/webhooks"):
        assert (await client.get(path)).status_code == 401


async def test_malformed_oversized_and_hostile_bodies_get_the_error_shape(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _user, headers = await make_user(app)
    good = {"name": "ok", "amount_usd": 10, "period": "month"}
    for bad in (
        {**good, "amount_usd": -1},
        {**good, "amount_usd": 0},
        {**good, "amount_usd": "ten"},
        {**good, "amount_usd": 1e300},
        {**good, "amount_usd": 1e-9},
        {**good, "period": "week"},
        {**good, "name": ""},
        {**good, "name": "x" * 10_000},
        {**good, "thresholds_pct": [0]},
        {**good, "thresholds_pct": []},
        {**good, "thresholds_pct": list(range(1, 12))},
        {**good, "scope": {"models": ["m"] * 51}},
        {**good, "scope": {"models": ["m" * 201]}},
        {**good, "scope": "gpt-4o"},
        {"name": "no amount", "period": "day"},
        [good],
    ):
        answer = await client.post("/api/budgets", json=bad, headers=headers)
        assert answer.status_code == 400, (bad, answer.text)
        assert set(answer.json()["error"]) == {"code", "message", "details"}
    broken = await client.post(
        "/api/budgets",
        content=b'{"name": ',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "invalid_json"

    hostile = "<img src=x onerror=alert(1)>'; DROP TABLE budgets; --"
    created = await client.post(
        "/api/budgets",
        json={
            **good,
            "name": hostile,
            "unknown": {"ignored": True},
            "scope": {"models": [hostile]},
        },
        headers=headers,
    )
    assert created.status_code == 201
    assert created.json()["name"] == hostile and created.json()["scope"]["models"] == [hostile]
    assert created.json()["spent_usd"] == 0 and created.json()["state"] == "ok"
    null_patch = await client.patch(
        f"/api/budgets/{created.json()['id']}", json={"amount_usd": None}, headers=headers
    )
    assert null_patch.status_code == 400

    for url in (
        "ftp://example.com/x",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://user:pw@example.com/",
        "example.com/hook",
        "http:///nohost",
        "http://exa mple.com/",
        "https://example.com/" + "a" * 3_000,
    ):
        answer = await client.post(
            "/api/webhooks", json={"url": url, "secret": "s" * 16}, headers=headers
        )
        assert answer.status_code == 400, (url, answer.text)
    short = await client.post(
        "/api/webhooks", json={"url": "https://example.com/", "secret": "short"}, headers=headers
    )
    assert short.status_code == 400
    made = await client.post(
        "/api/webhooks", json={"url": "https://example.com/h", "secret": "s" * 16}, headers=headers
    )
    assert made.status_code == 201 and "secret" not in made.json()
    answers = [
        await client.post(
            "/api/webhooks",
            json={"url": f"https://example.com/{n}", "secret": "s" * 16},
            headers=headers,
        )
        for n in range(WebhookRepository.limit)
    ]
    assert [a.status_code for a in answers] == [201] * (WebhookRepository.limit - 1) + [409]
    assert answers[-1].json()["error"]["code"] == "too_many_webhooks"
    for bad_limit in ("0", "101", "x"):
        answer = await client.get("/api/alerts", params={"limit": bad_limit}, headers=headers)
        assert answer.status_code == 400
    bad_cursor = await client.get("/api/alerts", params={"cursor": "not-a-cursor"}, headers=headers)
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["error"]["code"] == "invalid_cursor"
