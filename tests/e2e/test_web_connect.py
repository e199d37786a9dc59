"""The Connect page in a real browser against a real server: a new ingestion key is shown once
with the exact OpenTelemetry variables, and an SDK configured from nothing but those variables
sends spans that reach the usage summary; the list shows only the key's prefix; deleting the key
stops the exporter; a hostile key name stays text."""

from __future__ import annotations

import re
import time
from urllib.parse import unquote

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from playwright.sync_api import Browser, Page, expect

from tests.support.accessibility import assert_accessible
from tests.support.browser import api_get, browser_page, register, watch
from tests.support.server import ServerProcess

HOSTILE = '<img src=x onerror="window.__pwned=1">ci'


def create_key(page: Page, name: str) -> None:
    page.get_by_test_id("ingest-key-name").fill(name)
    with page.expect_response(
        lambda r: r.url.endswith("/api/ingest/keys") and r.request.method == "POST"
    ) as answer:
        page.get_by_test_id("ingest-key-create").click()
    assert answer.value.status == 201


def spans(count: int) -> list:  # type: ignore[type-arg]
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.connect")
    for i in range(count):
        with tracer.start_as_current_span(
            "chat",
            attributes={
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 40 + i,
                "gen_ai.usage.output_tokens": 8,
            },
        ):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_a_key_shown_once_configures_a_real_exporter(
    browser: Browser, web_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    with browser_page(browser) as page:
        problems = watch(page)
        register(page, web_server.base_url)
        page.get_by_test_id("nav-connect").click()
        expect(page.get_by_test_id("ingest-keys-empty")).to_be_visible()
        create_key(page, HOSTILE)
        key = page.get_by_test_id("new-key-value").inner_text().strip()
        assert re.fullmatch(r"apx_[A-Za-z0-9_-]{43}", key)
        shown = page.get_by_test_id("otel-env").inner_text().strip()
        assert shown == (
            f"OTEL_EXPORTER_OTLP_ENDPOINT={web_server.base_url}\n"
            f"OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20{key}\n"
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
        )
        row = page.get_by_test_id("ingest-key")
        expect(row).to_have_count(1)
        expect(row.locator("th")).to_have_text(HOSTILE)
        prefix = row.get_by_test_id("ingest-key-prefix").inner_text().rstrip("…")
        assert key.startswith(prefix) and len(prefix) < len(key)
        assert page.evaluate("window.__pwned") is None
        assert_accessible(page, "connect page showing a new key")

        # the SDK reads nothing but the variables the page showed
        for line in shown.splitlines():
            name, value = line.split("=", 1)
            monkeypatch.setenv(name, value)
        assert unquote(shown.splitlines()[1].split("=", 2)[2]) == f"Bearer {key}"
        exporter = OTLPSpanExporter()
        sent = spans(3)
        assert exporter.export(sent) == SpanExportResult.SUCCESS
        expected_inputs = sum(int(s.attributes["gen_ai.usage.input_tokens"]) for s in sent)
        deadline = time.monotonic() + 15
        totals = api_get(page, "/api/usage/summary")["body"]["totals"]
        while totals["requests"] < 3 and time.monotonic() < deadline:
            page.wait_for_timeout(200)
            totals = api_get(page, "/api/usage/summary")["body"]["totals"]
        assert (totals["requests"], totals["input_tokens"]) == (3, expected_inputs)

        # shown once: a reload lists the prefix, never the key
        page.reload()
        page.get_by_test_id("ingest-key").wait_for()
        expect(page.get_by_test_id("new-key")).to_be_hidden()
        assert key not in page.content()
        expect(page.get_by_test_id("ingest-key-used")).not_to_have_text("never")

        page.on("dialog", lambda dialog: dialog.accept())
        with page.expect_response(
            lambda r: "/api/ingest/keys/" in r.url and r.request.method == "DELETE"
        ) as deleted:
            page.get_by_test_id("ingest-key-delete").click()
        assert deleted.value.status == 204
        expect(page.get_by_test_id("ingest-keys-empty")).to_be_visible()
        assert exporter.export(spans(1)) == SpanExportResult.FAILURE
        assert problems.console_errors() == [] and problems.exceptions == []


def test_a_key_name_is_required(browser: Browser, web_server: ServerProcess) -> None:
    with browser_page(browser) as page:
        register(page, web_server.base_url)
        page.goto(web_server.base_url + "/#/connect")
        page.get_by_test_id("ingest-key-name").fill("   ")
        page.get_by_test_id("ingest-key-create").click()
        expect(page.get_by_test_id("ingest-key-error")).to_be_visible()
        expect(page.get_by_test_id("new-key")).to_be_hidden()
        assert api_get(page, "/api/ingest/keys")["body"]["items"] == []
