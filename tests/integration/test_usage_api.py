"""The usage endpoints over HTTP: uploads, limits, progress, demo, summary, erase, prices."""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import numpy
import pytest
from fastapi import FastAPI

from tests.support.accounts import make_user
from tests.support.asgi import running_app
from tests.support.ledgers import close_usage_ledger, open_usage_ledger
from tests.support.usage_files import make_usage_csv


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    name: str = "usage.csv",
    **form: str,
) -> httpx.Response:
    return await client.post(
        "/api/usage/uploads", headers=headers, files={"file": (name, data, "text/csv")}, data=form
    )


async def test_upload_reports_rows_errors_and_period(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, headers = await make_user(app)
    usage = make_usage_csv(800, seed=21, bad_every=50)
    response = await upload(client, headers, usage.data)
    assert response.status_code == 200
    body = response.json()
    assert body["rows_accepted"] == usage.good_rows
    assert body["rows_rejected"] == len(usage.bad_lines)
    assert [error["line"] for error in body["errors"]] == usage.bad_lines
    assert all(error["message"] for error in body["errors"])
    assert body["period"]["from"].endswith("Z") and body["period"]["to"] > body["period"]["from"]
    assert body["format"] == "csv" and body["state"] == "completed"
    assert body["unpriced"] == [
        {"provider": "acme", "model": "house-model", "rows": usage.unpriced}
    ]
    assert "tenant_id" not in body
    again = (await upload(client, headers, usage.data)).json()
    assert (again["rows_accepted"], again["rows_duplicate"]) == (0, usage.good_rows)
    summary = (await client.get("/api/usage/summary", headers=headers)).json()
    assert summary["totals"]["requests"] == usage.good_rows
    assert Decimal(str(summary["totals"]["cost_usd"])).quantize(
        Decimal("0.01")
    ) == usage.cost.quantize(Decimal("0.01"))
    assert {"from", "to"} == set(summary["period"])
    assert summary["by_model"] and summary["by_feature"] and summary["by_day"]


async def test_tenant_comes_from_the_token_never_from_the_file(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    owner, owner_headers = await make_user(app)
    other, other_headers = await make_user(app)
    data = (
        b"timestamp,model,tenant_id,input_tokens\n"
        + f"2024-03-01T00:00:00Z,gpt-4o,{other},10\n".encode()
    )
    report = (await upload(client, owner_headers, data)).json()
    assert report["rows_accepted"] == 1
    mine = (await client.get("/api/usage/summary", headers=owner_headers)).json()
    theirs = (await client.get("/api/usage/summary", headers=other_headers)).json()
    assert mine["totals"]["requests"] == 1 and theirs["totals"]["requests"] == 0
    foreign = await client.get(f"/api/usage/uploads/{report['upload_id']}", headers=other_headers)
    assert foreign.status_code == 404 and error_of(foreign)["code"] == "upload_not_found"
    listed = (await client.get("/api/usage/uploads", headers=other_headers)).json()
    assert listed == {"items": []}
    erased = await client.delete("/api/usage", headers=other_headers)
    assert erased.json() == {"deleted_rows": 0}
    assert (await client.get("/api/usage/summary", headers=owner_headers)).json()["totals"][
        "requests"
    ] == 1


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"\x00\x01\x02PK\x03\x04" * 100, "unsupported_format"),
        (b"name,value\nx,1\n", "unreadable_file"),
    ],
)
async def test_unusable_files_get_the_error_shape(
    app: FastAPI, client: httpx.AsyncClient, data: bytes, code: str
) -> None:
    _, headers = await make_user(app)
    response = await upload(client, headers, data)
    assert response.status_code == 400
    assert error_of(response)["code"] == code
    uploads = (await client.get("/api/usage/uploads", headers=headers)).json()["items"]
    assert [item["state"] for item in uploads] == ["failed"]


async def test_bad_requests_are_400_not_crashes(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers = await make_user(app)
    no_file = await client.post(
        "/api/usage/uploads", headers=headers, data={"x": "1"}, files={"other": ("a.csv", b"x")}
    )
    assert no_file.status_code == 400 and error_of(no_file)["code"] == "file_missing"
    not_multipart = await client.post("/api/usage/uploads", headers=headers, content=b"abc")
    assert error_of(not_multipart)["code"] == "multipart_required"
    bad_format = await upload(client, headers, b"timestamp,model\n", format="xml")
    assert error_of(bad_format)["code"] == "invalid_format"
    broken = await client.post(
        "/api/usage/uploads",
        headers={**headers, "content-type": "multipart/form-data; boundary=zzz"},
        content=b'--zzz\r\nContent-Disposition: form-data; name="file"\r\n\r\nnever ends',
    )
    assert broken.status_code == 400
    bad_period = await client.get("/api/usage/summary?from=yesterday", headers=headers)
    assert error_of(bad_period)["code"] == "invalid_period"
    unauthenticated = await client.get("/api/usage/summary")
    assert unauthenticated.status_code == 401


async def test_jsonl_with_a_forced_format(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers = await make_user(app)
    lines = [
        json.dumps(
            {
                "model": "gpt-4o-mini",
                "timestamp": "2024-03-02T10:00:00+05:30",
                "usage": {"input_tokens": 1000, "output_tokens": 10},
            }
        ),
        "{oops",
    ]
    response = await upload(client, headers, "\n".join(lines).encode(), "u.txt", format="jsonl")
    body = response.json()
    assert (body["format"], body["rows_accepted"], body["rows_rejected"]) == ("jsonl", 1, 1)
    assert body["period"]["from"] == "2024-03-02T04:30:00.000Z"


async def test_summary_period_filters(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers = await make_user(app)
    data = (
        b"timestamp,model,input_tokens\n2024-03-01T23:00:00Z,gpt-4o,1000000\n"
        b"2024-03-02T01:00:00Z,gpt-4o,1000000\n2024-03-03T00:00:00Z,gpt-4o,1000000\n"
    )
    await upload(client, headers, data)
    day = (
        await client.get("/api/usage/summary?from=2024-03-02&to=2024-03-02", headers=headers)
    ).json()
    assert day["totals"]["requests"] == 1 and day["totals"]["cost_usd"] == 2.5
    assert day["period"] == {"from": "2024-03-02T00:00:00.000Z", "to": "2024-03-03T00:00:00.000Z"}
    assert [d["day"] for d in day["by_day"]] == ["2024-03-02"]
    since = (
        await client.get("/api/usage/summary?from=2024-03-02T00:00:00Z", headers=headers)
    ).json()
    assert since["totals"]["requests"] == 2
    reversed_period = await client.get(
        "/api/usage/summary?from=2024-03-03&to=2024-03-01", headers=headers
    )
    assert reversed_period.status_code == 400


async def test_demo_data_loads_and_replaces(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers = await make_user(app)
    first = await client.post(
        "/api/usage/demo", headers=headers, json={"rows": 3_000, "seed": 5, "extra": "ignored"}
    )
    assert first.status_code == 200 and first.json()["rows_accepted"] == 3_000
    second = await client.post("/api/usage/demo", headers=headers, json={"rows": 2_000})
    assert second.json()["rows_accepted"] == 2_000
    summary = (await client.get("/api/usage/summary", headers=headers)).json()
    assert summary["totals"]["requests"] == 2_000
    assert len(summary["by_model"]) >= 6
    too_many = await client.post("/api/usage/demo", headers=headers, json={"rows": 10**9})
    assert error_of(too_many)["code"] == "too_many_rows"
    wrong = await client.post("/api/usage/demo", headers=headers, json={"rows": "many"})
    assert wrong.status_code == 400
    assert (await client.delete("/api/usage", headers=headers)).json() == {"deleted_rows": 2_000}
    assert (await client.get("/api/usage/summary", headers=headers)).json()["totals"][
        "requests"
    ] == 0


async def test_price_overrides_through_the_api(app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers = await make_user(app)
    other, other_headers = await make_user(app)
    await upload(
        client,
        headers,
        b"timestamp,model,input_tokens\n2024-03-01,my-model,2000000\n2024-03-01,gpt-4o,1000000\n",
    )
    catalog = (await client.get("/api/usage/prices", headers=headers)).json()
    assert catalog["as_of"] and any(m["id"] == "gpt-4o" for m in catalog["models"])
    assert (await client.get("/api/usage/summary", headers=headers)).json()["totals"][
        "cost_usd"
    ] == 2.5
    set_price = await client.put(
        "/api/usage/prices/my-model", headers=headers, json={"input": 1.5, "output": 2}
    )
    # the rows whose price changed: my-model's, not gpt-4o's
    assert set_price.status_code == 200 and set_price.json()["repriced_rows"] == 1
    summary = (await client.get("/api/usage/summary", headers=headers)).json()
    assert summary["totals"]["cost_usd"] == 3.0 + 2.5
    same_again = await client.put(
        "/api/usage/prices/my-model", headers=headers, json={"input": 1.5, "output": 2}
    )
    assert same_again.json()["repriced_rows"] == 0
    theirs = (await client.get("/api/usage/prices", headers=other_headers)).json()
    assert not any(m["id"] == "my-model" for m in theirs["models"])
    bad = await client.put("/api/usage/prices/my-model", headers=headers, json={"input": -1})
    assert error_of(bad)["code"] == "invalid_price"
    hostile = await client.put(
        "/api/usage/prices/my-model",
        headers=headers,
        json={"input": 1, "output": 1, "tier": {"$gt": ""}},
    )
    assert hostile.status_code == 400 and error_of(hostile)["code"] == "invalid_price"
    garbled = await client.put(
        "/api/usage/prices/my-model", headers=headers, content=b'{"input": 1,'
    )
    assert garbled.status_code == 422 and error_of(garbled)["code"] == "invalid_json"
    # a dollar a token would make the 2M-token call cost $2,000,000: refused, nothing changed
    too_high = await client.put(
        "/api/usage/prices/my-model", headers=headers, json={"input": 1_000_000, "output": 0}
    )
    assert too_high.status_code == 400 and error_of(too_high) == {
        "code": "price_too_high",
        "details": {"calls": 1, "max_call_cost_usd": 1_000_000},
        "message": error_of(too_high)["message"],
    }
    assert (await client.get("/api/usage/summary", headers=headers)).json()["totals"][
        "cost_usd"
    ] == 3.0 + 2.5
    gone = await client.delete("/api/usage/prices/my-model", headers=headers)
    assert gone.status_code == 204
    missing = await client.delete("/api/usage/prices/my-model", headers=headers)
    assert missing.status_code == 404


@pytest.fixture
def small_limit_settings(make_settings, database_url):  # type: ignore[no-untyped-def]
    return make_settings(database_url=database_url, upload_max_bytes=4_096)


async def test_uploads_over_the_limit_get_413(small_limit_settings) -> None:  # type: ignore[no-untyped-def]
    async with running_app(small_limit_settings) as (app, client):
        _, headers = await make_user(app)
        big = b"timestamp,model\n" + b"2024-03-01,gpt-4o\n" * 20_000
        response = await upload(client, headers, big)
        assert response.status_code == 413
        assert error_of(response)["details"] == {"limit_bytes": 4_096}

        async def chunks():  # type: ignore[no-untyped-def]
            yield (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n')
            for _ in range(100):
                yield b"2024-03-01,gpt-4o\n" * 100

        chunked = await client.post(
            "/api/usage/uploads",
            content=chunks(),
            headers={**headers, "content-type": "multipart/form-data; boundary=b"},
        )
        assert chunked.status_code == 413
        small = await upload(client, headers, b"timestamp,model\n2024-03-01,gpt-4o\n")
        assert small.status_code == 200


async def test_progress_of_an_upload_that_runs_in_the_background(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    _, headers = await make_user(app)
    app.state.usage_importer.batch_rows = 500
    usage = make_usage_csv(3_000, seed=4)
    started = await upload(client, headers, usage.data, wait="false")
    assert started.status_code == 202
    assert (started.json()["state"], started.json()["rows_processed"]) == ("processing", 0)
    upload_id = started.json()["upload_id"]
    seen = []
    for _ in range(600):
        status = (await client.get(f"/api/usage/uploads/{upload_id}", headers=headers)).json()
        seen.append(status["rows_processed"])
        if status["state"] == "completed":
            break
        await asyncio.sleep(0.05)
    assert status["state"] == "completed"
    assert status["rows_accepted"] == usage.good_rows
    assert status["rows_processed"] == usage.good_rows
    assert seen == sorted(seen)


async def test_an_upload_that_fails_on_the_server_is_reported_failed_and_keeps_nothing(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apex.analytics.ingest import SERVER_FAILURE
    from apex.analytics.ledger_duckdb import DuckDBUploadWriter

    _, headers = await make_user(app)
    app.state.usage_importer.batch_rows = 500
    usage = make_usage_csv(3_000, seed=5)
    staged = DuckDBUploadWriter.stage
    calls: list[int] = []

    def full_disk(self: DuckDBUploadWriter, rows) -> None:  # type: ignore[no-untyped-def]
        calls.append(rows.num_rows)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        staged(self, rows)

    monkeypatch.setattr(DuckDBUploadWriter, "stage", full_disk)
    started = await upload(client, headers, usage.data, wait="false")
    upload_id = started.json()["upload_id"]
    for _ in range(600):
        status = (await client.get(f"/api/usage/uploads/{upload_id}", headers=headers)).json()
        if status["state"] != "processing":
            break
        await asyncio.sleep(0.05)
    assert (status["state"], status["message"]) == ("failed", SERVER_FAILURE)
    summary = (await client.get("/api/usage/summary", headers=headers)).json()
    assert summary["totals"]["requests"] == 0
    assert list(app.state.ledger.staging_dir.iterdir()) == []
    monkeypatch.setattr(DuckDBUploadWriter, "stage", staged)
    retried = await upload(client, headers, usage.data)
    assert retried.json()["rows_accepted"] == usage.good_rows


async def test_an_unreachable_clickhouse_is_a_503_not_a_crash(  # type: ignore[no-untyped-def]
    make_settings, database_url: str
) -> None:
    from tests.support.services import free_port

    settings = make_settings(
        database_url=database_url, clickhouse_url=f"http://127.0.0.1:{free_port()}"
    )
    async with running_app(settings) as (app, client):
        _, headers = await make_user(app)
        response = await client.get("/api/usage/summary", headers=headers)
        assert response.status_code == 503
        assert error_of(response)["code"] == "ledger_unavailable"


@pytest.mark.parametrize("prepared_tenants", [20, 0])
async def test_a_restarted_server_prepares_the_answers_of_its_latest_uploaders(
    make_settings, database_url: str, prepared_tenants: int
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(database_url=database_url, ledger_prepare_tenants=prepared_tenants)
    usage = make_usage_csv(300, seed=41)
    async with running_app(settings) as (app, http):
        _, headers = await make_user(app)
        assert (await upload(http, headers, usage.data)).status_code == 200
    async with running_app(settings) as (restarted, http):
        ledger = restarted.state.ledger
        ledger.wait_for_answers(30)
        misses = ledger.answers.misses
        summary = (await http.get("/api/usage/summary", headers=headers)).json()
        assert summary["totals"]["requests"] == usage.good_rows
        assert (ledger.answers.misses == misses) == (prepared_tenants > 0)


@pytest.fixture(params=["duckdb", "clickhouse"])
async def engine_app(  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest, make_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app over a usage ledger on each engine (ClickHouse through chDB)."""
    ledger = open_usage_ledger(request.param, tmp_path, request)
    monkeypatch.setattr("apex.api.app.open_ledger", lambda _settings: ledger)
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'apex.db'}")
    async with running_app(settings) as running:
        assert running[0].state.ledger is ledger
        yield running
    close_usage_ledger(ledger)


LATENCY_MODELS = (("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4"))
LATENCY_FEATURES = ("chat", "search")


def latency_rows(
    seed: int,
) -> tuple[bytes, dict[tuple[str, str], list[float]], dict[str, list[float]]]:
    """A file of calls with skewed latencies (some without one), and each model's and
    feature's latencies as written."""
    rng = random.Random(seed)
    by_model: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_feature: dict[str, list[float]] = defaultdict(list)
    lines = ["timestamp,provider,model,input_tokens,output_tokens,latency_ms,feature"]
    for i in range(420):
        provider, model = LATENCY_MODELS[i % len(LATENCY_MODELS)]
        feature = rng.choice(LATENCY_FEATURES)
        stamp = f"2024-04-{1 + i % 3:02d}T{i % 24:02d}:{i % 60:02d}:00Z"
        latency = "" if i % 17 == 0 else f"{rng.lognormvariate(6.5, 0.9):.3f}"
        if latency:
            by_model[(provider, model)].append(float(latency))
            by_feature[feature].append(float(latency))
        lines.append(
            f"{stamp},{provider},{model},{rng.randint(50, 4000)},"
            f"{rng.randint(10, 900)},{latency},{feature}"
        )
    return ("\n".join(lines) + "\n").encode(), by_model, by_feature


async def test_summary_p99_latency_is_the_linear_percentile_of_the_uploaded_rows(
    engine_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = engine_app
    _, headers = await make_user(app)
    data, by_model, by_feature = latency_rows(seed=99)
    assert (await upload(client, headers, data)).json()["rows_accepted"] == 420
    summary = (await client.get("/api/usage/summary", headers=headers)).json()
    served = {(m["provider"], m["model"]): m for m in summary["by_model"]}
    assert set(served) == set(by_model)
    for key, latencies in by_model.items():
        for level, field in (
            (50, "p50_latency_ms"),
            (95, "p95_latency_ms"),
            (99, "p99_latency_ms"),
        ):
            assert served[key][field] == pytest.approx(
                numpy.percentile(latencies, level), abs=1e-6
            ), (key, field)
    features = {f["feature"]: f for f in summary["by_feature"]}
    for feature, latencies in by_feature.items():
        assert features[feature]["p99_latency_ms"] == pytest.approx(
            numpy.percentile(latencies, 99), abs=1e-6
        )


async def test_summary_splits_each_days_spend_by_model(
    engine_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = engine_app
    _, headers = await make_user(app)
    usage = make_usage_csv(1_500, seed=8)
    await upload(client, headers, usage.data)
    summary = (
        await client.get("/api/usage/summary?from=2024-03-04&to=2024-03-20", headers=headers)
    ).json()
    split: dict[str, Decimal] = defaultdict(Decimal)
    requests: dict[str, int] = defaultdict(int)
    for row in summary["by_day_model"]:
        assert set(row) == {"day", "provider", "model", "requests", "cost_usd", "unpriced_requests"}
        # a model no price is known for has no cost, never a cost of 0
        assert (row["cost_usd"] is None) == (row["unpriced_requests"] == row["requests"])
        split[row["day"]] += Decimal(str(row["cost_usd"] or 0))
        requests[row["day"]] += row["requests"]
    days = {row["day"]: row for row in summary["by_day"]}
    assert set(split) == set(days) and len(days) > 1
    for day, row in days.items():
        assert requests[day] == row["requests"]
        assert abs(split[day] - Decimal(str(row["cost_usd"] or 0))) <= Decimal("0.00001")
    models = {(m["provider"], m["model"]) for m in summary["by_model"]}
    assert {(r["provider"], r["model"]) for r in summary["by_day_model"]} == models
