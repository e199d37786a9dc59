"""The OpenTelemetry Python SDK exports GenAI spans to a real `apex serve` process (OTLP/HTTP)."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.json.http.trace_exporter import (
    OTLPSpanExporter as JsonSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from tests.support.cluster import shared_env
from tests.support.server import ServerProcess
from tests.support.services import PostgresServer, RedisServer
from tests.support.usage_files import catalog_prices

MAX_REQUEST_BYTES = 256 * 1024
VISIBLE_WITHIN_S = 15.0
# longer than the server's commit interval (0.5 s by default)
SETTLE_S = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("otlp"),
        env={"APEX_OTLP_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES)},
    ).start()
    yield process
    process.stop()
    assert "Traceback" not in process.log_path.read_text()


def sign_up(server: ServerProcess, email: str) -> dict[str, str]:
    response = httpx.post(
        f"{server.base_url}/api/auth/register",
        json={"email": email, "password": "correct horse battery 9"},
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def new_key(server: ServerProcess, user: dict[str, str], name: str = "collector") -> dict[str, Any]:
    response = httpx.post(f"{server.base_url}/api/ingest/keys", json={"name": name}, headers=user)
    assert response.status_code == 201, response.text
    return response.json()


def genai_spans(seed: int) -> list[ReadableSpan]:
    """GenAI spans (current attribute names and the older aliases), one failed, plus spans
    that are not GenAI calls, as an instrumented application's SDK records them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"app-{seed}"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.otlp")
    for i in range(12):
        model = "gpt-4o" if i % 3 else "gpt-4o-mini"
        attributes: dict[str, Any] = (
            {
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": 100 + 7 * i + seed,
                "gen_ai.usage.output_tokens": 20 + i,
                "apex.feature": "search",
            }
            if i % 2
            else {
                "gen_ai.system": "openai",
                "gen_ai.request.model": model,
                "gen_ai.usage.prompt_tokens": 300 + i,
                "gen_ai.usage.completion_tokens": 9 + seed,
                "gen_ai.operation.name": "chat",
            }
        )
        with tracer.start_as_current_span(f"chat {model}", attributes=attributes) as span:
            if i == 5:
                span.set_status(Status(StatusCode.ERROR, "rate_limited"))
    for i in range(3):
        with tracer.start_as_current_span(f"GET /items/{i}", attributes={"http.method": "GET"}):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def expected_totals(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """The summary these spans must give, priced from the catalog's data file."""
    prices = catalog_prices()
    totals = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "errors": 0, "cost": Decimal(0)}
    for span in spans:
        found = dict(span.attributes or {})
        model = found.get("gen_ai.request.model")
        if model is None:
            continue
        inputs = int(
            found.get("gen_ai.usage.input_tokens", found.get("gen_ai.usage.prompt_tokens", 0))
        )
        outputs = int(
            found.get("gen_ai.usage.output_tokens", found.get("gen_ai.usage.completion_tokens", 0))
        )
        price = prices[("openai", str(model))]
        totals["requests"] += 1
        totals["input_tokens"] += inputs
        totals["output_tokens"] += outputs
        totals["errors"] += span.status.status_code == StatusCode.ERROR
        totals["cost"] += (inputs * price["input"] + outputs * price["output"]) / 1_000_000
    return totals


def summary(server: ServerProcess, user: dict[str, str]) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/api/usage/summary", headers=user)
    assert response.status_code == 200, response.text
    return response.json()["totals"]


def wait_for_requests(server: ServerProcess, user: dict[str, str], count: int) -> dict[str, Any]:
    """The totals once `count` requests are visible (or the wait ran out), read again after
    later commits had time to land, so a row counted twice would show."""
    deadline = time.monotonic() + VISIBLE_WITHIN_S
    while summary(server, user)["requests"] < count and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(SETTLE_S)
    return summary(server, user)


def protobuf_exporter(server: ServerProcess, key: str) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=f"{server.base_url}/v1/traces",
        timeout=10,
        headers={"Authorization": f"Bearer {key}"},
        compression=Compression.Gzip,
    )


def assert_totals(totals: dict[str, Any], expected: dict[str, Any]) -> None:
    assert totals["requests"] == expected["requests"]
    assert totals["input_tokens"] == expected["input_tokens"]
    assert totals["output_tokens"] == expected["output_tokens"]
    assert totals["errors"] == expected["errors"]
    assert totals["unpriced_requests"] == 0
    assert Decimal(str(totals["cost_usd"])).quantize(Decimal("0.000001")) == expected[
        "cost"
    ].quantize(Decimal("0.000001"))


def test_sdk_exports_in_protobuf_and_json_land_once_each(server: ServerProcess) -> None:
    user = sign_up(server, "otlp-sdk@example.com")
    key = new_key(server, user)["key"]
    spans = genai_spans(seed=1)
    expected = expected_totals(spans)
    exporter = protobuf_exporter(server, key)
    # the first export, an SDK retry of the same batch, and the same spans as OTLP/JSON
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    json_exporter = JsonSpanExporter(
        endpoint=f"{server.base_url}/v1/traces",
        timeout=10,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert json_exporter.export(spans) == SpanExportResult.SUCCESS
    assert_totals(wait_for_requests(server, user, expected["requests"]), expected)

    more = genai_spans(seed=2)
    assert json_exporter.export(more) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # a late retry of the first
    both = expected_totals(spans + more)
    assert_totals(wait_for_requests(server, user, both["requests"]), both)
    listed = httpx.get(f"{server.base_url}/api/ingest/keys", headers=user).json()["items"]
    assert listed[0]["last_used_at"] is not None and "key" not in listed[0]


def test_a_revoked_key_gets_401_at_once(server: ServerProcess) -> None:
    user = sign_up(server, "otlp-revoke@example.com")
    created = new_key(server, user, "to revoke")
    exporter = protobuf_exporter(server, created["key"])
    spans = genai_spans(seed=3)
    assert exporter.export(spans[:2]) == SpanExportResult.SUCCESS
    deleted = httpx.delete(f"{server.base_url}/api/ingest/keys/{created['id']}", headers=user)
    assert deleted.status_code == 204
    assert exporter.export(spans[2:]) == SpanExportResult.FAILURE
    response = post(server, created["key"], b"{}", "application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_ingestion_key"
    assert httpx.get(f"{server.base_url}/api/ingest/keys", headers=user).json()["items"] == []
    assert wait_for_requests(server, user, 2)["requests"] == 2


def post(
    server: ServerProcess, key: str | None, body: bytes, content_type: str, **headers: str
) -> httpx.Response:
    sent = {"Content-Type": content_type, **headers}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    return httpx.post(f"{server.base_url}/v1/traces", content=body, headers=sent, timeout=30)


def span_json(span_id: int, model: str, inputs: object) -> dict[str, Any]:
    return {
        "spanId": f"{span_id:016x}",
        "startTimeUnixNano": "1733500000000000000",
        "endTimeUnixNano": "1733500001000000000",
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": model}},
            {"key": "gen_ai.usage.input_tokens", "value": {"stringValue": str(inputs)}},
        ],
    }


def export_json(spans: list[dict[str, Any]]) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()


def test_refused_spans_are_a_partial_success(server: ServerProcess) -> None:
    user = sign_up(server, "otlp-partial@example.com")
    key = new_key(server, user)["key"]
    spans = [
        span_json(1, "gpt-4o", 10),
        span_json(2, "gpt-4o", "-5"),
        span_json(3, "gpt-4o", "many"),
        span_json(4, "gpt-4o", 30),
    ]
    answer = post(server, key, export_json(spans), "application/json")
    assert answer.status_code == 200, answer.text
    partial = answer.json()["partial_success"]
    assert partial["rejected_spans"] == 2 and "input_tokens" in partial["error_message"]

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.span_id = bytes.fromhex("00000000000000ff")
    span.attributes.add(key="gen_ai.request.model").value.string_value = "gpt-4o"
    span.attributes.add(key="gen_ai.usage.input_tokens").value.double_value = 1.5
    proto = post(server, key, request.SerializeToString(), "application/x-protobuf")
    assert proto.status_code == 200
    assert proto.headers["content-type"] == "application/x-protobuf"
    decoded = ExportTraceServiceResponse.FromString(proto.content)
    assert decoded.partial_success.rejected_spans == 1
    totals = wait_for_requests(server, user, 2)
    assert (totals["requests"], totals["input_tokens"]) == (2, 40)


def test_bad_foreign_oversized_and_hostile_exports(server: ServerProcess) -> None:
    owner = sign_up(server, "otlp-owner@example.com")
    other = sign_up(server, "otlp-other@example.com")
    key = new_key(server, owner)
    good = export_json([span_json(7, "gpt-4o", 11)])

    def refused(response: httpx.Response, status: int) -> str:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"} and error["message"]
        return str(error["code"])

    # no key, a malformed one, an unknown one, an access token instead of a key
    assert refused(post(server, None, good, "application/json"), 401) == "invalid_ingestion_key"
    refused(post(server, "apx_" + "A" * 43, good, "application/json"), 401)
    refused(post(server, key["key"][:-2], good, "application/json"), 401)
    refused(post(server, other["Authorization"].split()[1], good, "application/json"), 401)
    # bodies that cannot be parsed, and media types OTLP does not use
    refused(post(server, key["key"], b"\xff\x00garbage", "application/x-protobuf"), 400)
    refused(post(server, key["key"], b"{not json", "application/json"), 400)
    refused(post(server, key["key"], b"[1, 2]", "application/json"), 400)
    hostile = json.dumps({"resourceSpans": [{"scopeSpans": ["x"]}, 5]}).encode()
    refused(post(server, key["key"], hostile, "application/json"), 400)
    deep = b'{"resourceSpans": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    refused(post(server, key["key"], deep, "application/json"), 400)
    refused(
        post(server, key["key"], b"not gzip", "application/json", **{"Content-Encoding": "gzip"}),
        400,
    )
    refused(post(server, key["key"], good, "text/plain"), 415)
    refused(post(server, key["key"], good, "application/json", **{"Content-Encoding": "br"}), 415)
    # too large: as declared, as streamed without a length, and once inflated (a gzip bomb)
    big = b"{" + b" " * MAX_REQUEST_BYTES + b"}"
    assert refused(post(server, key["key"], big, "application/json"), 413) == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_REQUEST_BYTES // 65_536 + 2):
            yield b" " * 65_536

    streamed = httpx.post(
        f"{server.base_url}/v1/traces",
        content=chunks(),
        timeout=30,
        headers={"Authorization": f"Bearer {key['key']}", "Content-Type": "application/json"},
    )
    refused(streamed, 413)
    bomb = gzip.compress(b" " * (64 * 1_048_576))
    assert len(bomb) < MAX_REQUEST_BYTES
    refused(post(server, key["key"], bomb, "application/json", **{"Content-Encoding": "gzip"}), 413)
    # an empty export is fine; spans land with the key's owner only
    assert post(server, key["key"], b"{}", "application/json").json() == {}
    assert (
        post(
            server,
            key["key"],
            gzip.compress(good),
            "application/json",
            **{"Content-Encoding": "gzip"},
        ).status_code
        == 200
    )
    assert wait_for_requests(server, owner, 1)["requests"] == 1
    assert summary(server, other)["requests"] == 0


def test_keys_are_listed_by_prefix_and_kept_from_other_users(
    server: ServerProcess, tmp_path: Path
) -> None:
    alice = sign_up(server, "keys-alice@example.com")
    bob = sign_up(server, "keys-bob@example.com")
    first, second = new_key(server, alice, "prod"), new_key(server, alice, "staging")
    assert first["key"] != second["key"] and first["key"].startswith("apx_")
    listed = httpx.get(f"{server.base_url}/api/ingest/keys", headers=alice).json()["items"]
    assert [k["name"] for k in listed] == ["staging", "prod"]
    assert set(listed[0]) == {"id", "name", "prefix", "created_at", "last_used_at"}
    assert first["key"].startswith(listed[1]["prefix"])
    assert all(k["last_used_at"] is None for k in listed)
    assert httpx.get(f"{server.base_url}/api/ingest/keys", headers=bob).json()["items"] == []
    foreign = httpx.delete(f"{server.base_url}/api/ingest/keys/{first['id']}", headers=bob)
    assert foreign.status_code == 404 and foreign.json()["error"]["code"]
    assert httpx.get(f"{server.base_url}/api/ingest/keys").status_code == 401
    for body in ({}, {"name": ""}, {"name": "x" * 201}, {"name": ["a"]}):
        response = httpx.post(f"{server.base_url}/api/ingest/keys", json=body, headers=alice)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    broken = httpx.post(
        f"{server.base_url}/api/ingest/keys",
        content=b"{name",
        headers={**alice, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    extra = httpx.post(
        f"{server.base_url}/api/ingest/keys", headers=alice, json={"name": "ci", "scope": "ignored"}
    )
    assert extra.status_code == 201


def test_a_key_deleted_on_one_process_is_refused_at_once_by_another(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    env = shared_env(postgres_server, redis_server)
    first = ServerProcess(data_dir=tmp_path / "a", env=dict(env)).start()
    try:
        second = ServerProcess(data_dir=tmp_path / "b", env=dict(env)).start()
        try:
            user = sign_up(first, "otlp-two@example.com")
            created = new_key(first, user)
            body = export_json([span_json(9, "gpt-4o", 12)])
            assert post(second, created["key"], body, "application/json").status_code == 200
            deleted = httpx.delete(
                f"{first.base_url}/api/ingest/keys/{created['id']}", headers=user
            )
            assert deleted.status_code == 204
            refused = post(second, created["key"], body, "application/json")
            assert refused.status_code == 401, refused.text
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_full_queue_answers_429_with_retry_after(tmp_path: Path) -> None:
    """Commits wait up to 5 s and 1,000 rows may wait: a second export in that time is told
    to come back, and its spans land once it does."""
    server = ServerProcess(
        data_dir=tmp_path / "data",
        env={"APEX_OTLP_COMMIT_INTERVAL_S": "5", "APEX_OTLP_MAX_PENDING_ROWS": "1000"},
    ).start()
    try:
        user = sign_up(server, "otlp-busy@example.com")
        key = new_key(server, user)["key"]
        first = export_json([span_json(i, "gpt-4o", 1) for i in range(1_000)])
        assert post(server, key, first, "application/json").status_code == 200
        second = export_json([span_json(5_000, "gpt-4o", 2)])
        busy = post(server, key, second, "application/json")
        assert busy.status_code == 429, busy.text
        assert int(busy.headers["Retry-After"]) >= 1
        assert busy.json()["error"]["code"] == "ingest_busy"
        for _ in range(20):  # as an exporter does: again after Retry-After
            time.sleep(int(busy.headers["Retry-After"]))
            retried = post(server, key, second, "application/json")
            if retried.status_code != 429:
                break
        assert retried.status_code == 200, retried.text
        totals = wait_for_requests(server, user, 1_001)
        assert (totals["requests"], totals["input_tokens"]) == (1_001, 1_002)
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text()
