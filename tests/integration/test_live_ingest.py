"""The live batcher on a real DuckDB ledger, and ingestion keys on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from apex.analytics.importers.otlp_export import JSON, read_export
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger import SqlLedger
from apex.analytics.ledger_duckdb import DuckDBLedger
from apex.analytics.live_ingest import LiveIngest
from apex.analytics.pricing import PriceCatalog
from apex.auth.ingestion_keys import MAX_KEYS_PER_USER, IngestionKeys, key_hash
from apex.errors import Conflict, NotFound, RateLimited, ServiceUnavailable, Unauthorized
from apex.store.database import Database
from apex.store.repositories.ingestion_keys import IngestionKeyRepository
from apex.store.repositories.users import UserRepository

START_NS = 1_733_500_000_000_000_000


def export_body(tokens: list[object], *, first_id: int = 0) -> bytes:
    """An OTLP/JSON export with one GenAI span per entry of `tokens` (its input tokens)."""
    spans = [
        {
            "spanId": f"{first_id + i:016x}",
            "startTimeUnixNano": str(START_NS + i),
            "endTimeUnixNano": str(START_NS + i + 10**9),
            "attributes": [
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"stringValue": str(count)}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}},
            ],
        }
        for i, count in enumerate(tokens)
    ]
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()


@pytest.fixture
def importer(usage_ledger: SqlLedger) -> UsageImporter:
    """On DuckDB and on ClickHouse (chDB), whose commits stage rows under their upload id."""
    return UsageImporter(usage_ledger, PriceCatalog.load())


@pytest.fixture
def duckdb_importer(tmp_path: Path) -> Iterator[UsageImporter]:
    ledger = DuckDBLedger(tmp_path / "ledger.duckdb", memory_limit_mb=128, threads=1)
    yield UsageImporter(ledger, PriceCatalog.load())
    ledger.close()


async def test_refusals_are_counted_per_export_past_the_described_few(
    importer: UsageImporter,
) -> None:
    live = LiveIngest(importer, commit_interval_s=0.05)
    try:
        bad_then_good = read_export(export_body(["x"] * 60 + [10] * 5), JSON)
        good = read_export(export_body([7] * 10, first_id=1000), JSON)
        first, second = live.submit("t", bad_then_good), live.submit("t", good)
        one, two = await asyncio.wrap_future(first), await asyncio.wrap_future(second)
    finally:
        await asyncio.to_thread(live.close)
    assert (one.accepted, one.rejected) == (5, 60)
    assert one.messages and all(m.startswith("input_tokens") for m in one.messages)
    assert (two.accepted, two.rejected) == (10, 0)
    totals = await importer.ledger.totals("t")
    assert (totals.requests, totals.input_tokens) == (15, 5 * 10 + 10 * 7)


async def test_a_batch_sent_twice_is_counted_once(importer: UsageImporter) -> None:
    live = LiveIngest(importer, commit_interval_s=0.05)
    body = export_body([3, 4, 5])
    try:
        for _ in range(2):  # both wait in one commit: dropped within the batch
            await asyncio.wrap_future(live.submit("t", read_export(body, JSON)))
        await asyncio.to_thread(live.close)
        live = LiveIngest(importer, commit_interval_s=0.05)
        # after the commit: dropped by the ledger, as a re-upload is
        await asyncio.wrap_future(live.submit("t", read_export(body, JSON)))
    finally:
        await asyncio.to_thread(live.close)
    totals = await importer.ledger.totals("t")
    assert (totals.requests, totals.input_tokens) == (3, 12)


async def test_a_full_queue_refuses_with_429_then_503_while_commits_fail(
    duckdb_importer: UsageImporter,
) -> None:
    importer = duckdb_importer
    live = LiveIngest(importer, commit_interval_s=3600, max_pending_rows=1_000)
    try:
        alone = read_export(export_body([1] * 1_200), JSON)
        await asyncio.wrap_future(live.submit("t", alone))  # alone it may pass the cap
        with pytest.raises(RateLimited) as busy:
            live.submit("t", read_export(export_body([1], first_id=5_000), JSON))
        assert busy.value.retry_after_s >= 1
    finally:
        await asyncio.to_thread(live.close)
    assert (await importer.ledger.totals("t")).requests == 1_200

    live = LiveIngest(importer, commit_interval_s=2.0, max_pending_rows=1_000)
    try:
        await asyncio.wrap_future(
            live.submit("t", read_export(export_body([2] * 1_100, first_id=9_000), JSON))
        )
        importer.ledger.close()  # the commit, due in 2 s, fails; its rows are kept
        for _ in range(200):
            try:
                live.refuse_if_full(1)
            except RateLimited:
                pass  # full, until the commit fails
            except ServiceUnavailable as exc:
                assert exc.retry_after_s >= 1
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("a failing ledger never turned exports away")
    finally:
        await asyncio.to_thread(live.close, 1.0)


async def test_spans_that_cannot_be_normalized_are_answered_503(
    duckdb_importer: UsageImporter,
) -> None:
    live = LiveIngest(duckdb_importer, commit_interval_s=0.05)
    duckdb_importer.ledger.close()  # the tenant's prices cannot be read: nothing is normalized
    try:
        with pytest.raises(ServiceUnavailable) as refused:
            await asyncio.wrap_future(live.submit("t", read_export(export_body([1]), JSON)))
        assert refused.value.code == "ingest_failed" and refused.value.retry_after_s >= 1
        live.refuse_if_full(1)  # the queue was released
    finally:
        await asyncio.to_thread(live.close, 1.0)


async def test_ingestion_keys_are_hashed_owned_and_dead_once_deleted(database_url: str) -> None:
    db = Database(database_url)
    await db.upgrade()
    try:
        users = UserRepository(db)
        alice = (await users.create(email="a@example.com", password_hash=None, name=None)).id
        bob = (await users.create(email="b@example.com", password_hash=None, name=None)).id
        keys = IngestionKeys(IngestionKeyRepository(db))
        issued = await keys.create(alice, "  collector  ")
        assert issued.record.name == "collector"
        assert issued.record.key_hash == key_hash(issued.key) != issued.key
        assert issued.key.startswith(issued.record.prefix) and len(issued.record.prefix) < 16
        assert await keys.owner(issued.key) == alice
        listed = await keys.list(alice)
        assert [k.id for k in listed] == [issued.record.id]
        assert listed[0].last_used_at is not None
        assert await keys.list(bob) == []
        with pytest.raises(NotFound):
            await keys.delete(bob, issued.record.id)
        tampered = issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")
        for wrong in (
            None,
            "",
            tampered,
            issued.key + "x",
            issued.record.prefix,
            issued.record.key_hash,
        ):
            with pytest.raises(Unauthorized):
                await keys.owner(wrong)
        await keys.delete(alice, issued.record.id)
        with pytest.raises(Unauthorized):
            await keys.owner(issued.key)
        for number in range(MAX_KEYS_PER_USER):
            await keys.create(bob, f"key {number}")
        with pytest.raises(Conflict) as full:
            await keys.create(bob, "one too many")
        assert full.value.code == "too_many_keys"
        assert len(await keys.list(bob)) == MAX_KEYS_PER_USER
        await keys.create(alice, "another account is not limited by bob's keys")
    finally:
        await db.dispose()
