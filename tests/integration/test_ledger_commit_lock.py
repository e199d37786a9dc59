"""Servers sharing one ClickHouse ledger take turns at writing, through a lease in a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from apex.analytics.commit_lock import SharedCommitLock
from apex.analytics.factory import open_ledger
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger_clickhouse import ClickHouseLedger
from apex.analytics.pricing import PriceCatalog, price_from_dict
from apex.errors import ServiceUnavailable
from tests.support.services import RedisServer, free_port
from tests.support.usage_files import import_bytes

HEADER = b"timestamp,model,provider,input_tokens,output_tokens\n"


def _lock(url: str, name: str, **options: float) -> SharedCommitLock:
    return SharedCommitLock(redis.Redis.from_url(url), name=name, **options)  # type: ignore[arg-type]


@pytest.fixture
def lock_name() -> str:
    return f"apex:test:{uuid.uuid4().hex}"


def test_servers_take_turns_and_a_server_may_take_its_own_lock_again(
    redis_server: RedisServer, lock_name: str
) -> None:
    first = _lock(redis_server.url, lock_name)
    second = _lock(redis_server.url, lock_name, wait_s=0.3)
    try:
        with first:
            with first:  # a commit that re-prices takes it again inside
                pass
            with pytest.raises(ServiceUnavailable) as busy, second:  # still held: depth 1
                pass
            assert busy.value.code == "ledger_busy"
        with second:  # given back at depth 0
            pass
    finally:
        first.close()
        second.close()


_DIES_HOLDING_THE_LOCK = """
import os, sys, redis
from apex.analytics.commit_lock import SharedCommitLock

lock = SharedCommitLock(redis.Redis.from_url(sys.argv[1]), name=sys.argv[2], lease_s=3.0)
lock.__enter__()
os._exit(7)
"""


def test_the_lease_is_renewed_while_held_and_lapses_when_its_server_dies(
    redis_server: RedisServer, lock_name: str
) -> None:
    holder = _lock(redis_server.url, lock_name, lease_s=0.6)
    other = _lock(redis_server.url, lock_name, wait_s=0.1)
    try:
        with holder:
            time.sleep(2.0)  # three leases long: only renewal keeps it
            with pytest.raises(ServiceUnavailable), other:
                pass
        root = Path(__file__).resolve().parents[2]
        child = subprocess.run(  # takes the lock, then dies without giving it back
            [sys.executable, "-c", _DIES_HOLDING_THE_LOCK, redis_server.url, lock_name],
            cwd=root,
            env={**os.environ, "PYTHONPATH": f"{root / 'src'}:{root}"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert child.returncode == 7, child.stderr
        with pytest.raises(ServiceUnavailable), other:
            pass
        patient = _lock(redis_server.url, lock_name, wait_s=30.0)
        with patient:
            pass
        patient.close()
    finally:
        holder.close()
        other.close()


def test_a_redis_that_does_not_answer_refuses_the_write_clearly_and_holds_nothing() -> None:
    lock = _lock(f"redis://127.0.0.1:{free_port()}/0", "apex:test:down")
    for _ in range(2):
        with pytest.raises(ServiceUnavailable) as refused, lock:
            pass
        assert refused.value.code == "dependency_unavailable"
    # the thread lock was given back: another thread gets as far as Redis too
    failures: list[str] = []

    def again() -> None:
        try:
            with lock:
                pass
        except ServiceUnavailable as exc:
            failures.append(exc.code)

    worker = threading.Thread(target=again)
    worker.start()
    worker.join(timeout=30)
    assert failures == ["dependency_unavailable"]
    lock.close()


@pytest.fixture
def two_servers(
    request: pytest.FixtureRequest, redis_server: RedisServer, lock_name: str
) -> Iterator[tuple[ClickHouseLedger, ClickHouseLedger]]:
    """Two servers' ledgers on one ClickHouse database (chDB), each with its own lock object
    and connection to Redis, as two processes would have."""
    server = request.getfixturevalue("chdb_server")
    database = f"t_{uuid.uuid4().hex[:16]}"
    ledgers = [
        ClickHouseLedger(server, database=database, commit_lock=_lock(redis_server.url, lock_name))
        for _ in range(2)
    ]
    yield ledgers[0], ledgers[1]
    ledgers[0].drop()
    for ledger in ledgers:
        ledger.close()


async def test_a_price_set_on_one_server_while_another_commits_an_upload_reaches_its_rows(
    two_servers: tuple[ClickHouseLedger, ClickHouseLedger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server A has checked the tenant's prices and is about to insert an upload's rows when
    server B saves a new price and re-prices the tenant. With the shared lock B waits for A's
    commit and re-prices A's rows too; each on its own lock, B would finish first and A's rows
    would keep the replaced price for good."""
    a, b = two_servers
    importer_a = UsageImporter(a, PriceCatalog.load())
    importer_b = UsageImporter(b, PriceCatalog.load())
    import_bytes(importer_a, "t", HEADER + b"2024-03-01T00:00:00Z,gpt-4o,openai,1000000,0\n")
    repriced: list[int] = []
    setting = threading.Thread(
        target=lambda: repriced.append(
            importer_b.set_price(
                "t",
                price_from_dict(
                    {"id": "gpt-4o", "provider": "openai", "input": "1.00", "output": "4.00"},
                    source="user",
                ),
            )
        )
    )
    open_upload = a.open_upload

    def open_upload_while_b_sets_a_price(tenant_id: str, upload_id: str):  # type: ignore[no-untyped-def]
        writer = open_upload(tenant_id, upload_id)
        commit = writer.commit

        def commit_after_b() -> tuple[int, int]:
            setting.start()
            setting.join(timeout=1.5)  # B gets this far only without a shared lock
            return commit()

        writer.commit = commit_after_b  # type: ignore[method-assign]
        return writer

    monkeypatch.setattr(a, "open_upload", open_upload_while_b_sets_a_price)
    second = import_bytes(
        importer_a, "t", HEADER + b"2024-03-02T00:00:00Z,gpt-4o,openai,1000000,0\n"
    )
    setting.join(timeout=60)
    assert second.rows_accepted == 1
    assert repriced == [2]
    totals = await a.totals("t")
    assert (totals.requests, totals.cost_usd) == (2, Decimal("2.00"))  # 1M input tokens at $1


def test_a_clickhouse_ledger_shares_its_lock_through_redis_when_redis_is_configured(
    make_settings,
) -> None:  # type: ignore[no-untyped-def]
    shared = open_ledger(
        make_settings(clickhouse_url="http://127.0.0.1:9/", redis_url="redis://127.0.0.1:9/0")
    )
    alone = open_ledger(make_settings(clickhouse_url="http://127.0.0.1:9/"))
    try:
        assert isinstance(shared.commit_lock, SharedCommitLock) and shared.writes_alone
        assert not isinstance(alone.commit_lock, SharedCommitLock) and not alone.writes_alone
    finally:
        shared.close()
        alone.close()


async def test_a_repricing_cut_short_on_one_server_is_finished_by_another_at_once(
    two_servers: tuple[ClickHouseLedger, ClickHouseLedger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Holding the shared lock, a server knows no other one is re-pricing: a mark still
    there was left by a stop, and it need not wait ABANDONED_AFTER to finish it."""
    a, b = two_servers
    importer_a = UsageImporter(a, PriceCatalog.load())
    import_bytes(importer_a, "t", HEADER + b"2024-03-01T00:00:00Z,gpt-4o,openai,1000000,0\n")

    def stop(*_: object) -> None:
        raise RuntimeError("stopped")

    monkeypatch.setattr(a, "_reprice_rows", stop)
    with pytest.raises(RuntimeError):
        importer_a.set_price(
            "t",
            price_from_dict(
                {"id": "gpt-4o", "provider": "openai", "input": "1.00", "output": "4.00"},
                source="user",
            ),
        )
    assert (await b.totals("t")).cost_usd == Decimal("2.50")  # the replaced price
    assert UsageImporter(b, PriceCatalog.load()).finish_interrupted_repricing() == ["t"]
    assert (await b.totals("t")).cost_usd == Decimal("1.00")
    assert b.interrupted_repricing() == []
