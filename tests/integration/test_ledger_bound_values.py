"""Hostile names and ids go through every write and read of the ledger, on both engines, as
values the engine binds: each is stored and matched as itself, no statement's text ever holds
one, and no other tenant's rows are touched."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from apex.analytics import ledger_duckdb
from apex.analytics.filters import UsageFilter
from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger import SqlLedger
from apex.analytics.pricing import PriceCatalog, normalize_provider, price_from_dict
from apex.analytics.statement import as_statement
from apex.analytics.uploads import UploadStatus
from tests.support.usage_files import import_bytes

# quotes, comment and statement breakers, LIKE wildcards, backslashes, and text shaped like
# each engine's placeholders
HOSTILE = (
    "x' OR '1'='1",
    "'); DELETE FROM usage; --",
    "a\\'b\\",
    "50%_off",
    "$tenant_id",
    "{v0:String}",
    'q"uote`d',
)
# those that can only be in a statement's text if a value was put there
NEVER_IN_TEXT = HOSTILE[:4] + HOSTILE[6:]
VICTIM = "victim"


def _csv(rows: list[tuple[str, str, str, int]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["timestamp", "model", "provider", "feature", "input_tokens", "output_tokens"])
    for index, (model, provider, feature, tokens) in enumerate(rows):
        writer.writerow(
            [f"2024-05-01T10:{index % 60:02d}:00Z", model, provider, feature, tokens, 1]
        )
    return out.getvalue().encode()


def _rows() -> list[tuple[str, str, str, int]]:
    """Each hostile name as the model, provider (as the ledger spells providers) and feature
    of its own rows, plus plain rows."""
    rows = [
        (name, normalize_provider(name) or name, name, 100 + index)
        for index, name in enumerate(HOSTILE)
    ]
    rows += [(name, "openai", "chat", 7) for name in HOSTILE]
    return rows + [("gpt-4o", "openai", "chat", 1_000)] * 3


def _record_statements(ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement text the ledger sends to its engine from now on."""
    sent: list[str] = []

    def spy(name: str, take: Callable[[Any], list[Any]]) -> None:
        original = getattr(ledger, name)

        def recorded(first: Any, *rest: Any) -> Any:
            sent.extend(as_statement(item).sql for item in take(first))
            return original(first, *rest)

        monkeypatch.setattr(ledger, name, recorded)

    for name in ("_rows", "_command", "_arrow", "_rows_over"):
        spy(name, lambda statement: [statement])
    for name in ("_write", "_reprice_rows"):
        spy(name, list)
    execute = ledger_duckdb.execute

    def recorded_execute(cursor: Any, statement: Any) -> Any:
        sent.append(as_statement(statement).sql)
        return execute(cursor, statement)

    monkeypatch.setattr(ledger_duckdb, "execute", recorded_execute)
    return sent


async def test_hostile_names_and_ids_are_bound_values_on_both_engines(
    usage_ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    importer = UsageImporter(usage_ledger, PriceCatalog.load())
    import_bytes(importer, VICTIM, _csv([("gpt-4o", "openai", "chat", 1_000)] * 5))
    victim_before = await usage_ledger.totals(VICTIM)
    sent = _record_statements(usage_ledger, monkeypatch)
    rows = _rows()

    for tenant in HOSTILE:
        status = import_bytes(importer, tenant, _csv(rows))
        assert (status.state, status.rows_accepted) == ("completed", len(rows))
        stored = usage_ledger.get_upload(tenant, status.upload_id)
        times = {"created_at", "updated_at"}  # the record keeps them to the millisecond
        assert stored is not None
        assert stored.model_dump(exclude=times) == status.model_dump(exclude=times)
        assert [u.upload_id for u in usage_ledger.list_uploads(tenant)] == [status.upload_id]
        assert usage_ledger.get_upload(VICTIM, status.upload_id) is None
        assert (await usage_ledger.totals(tenant)).requests == len(rows)

        # every dimension narrows to exactly the rows carrying the name, counted here
        for name, provider in {(r[0], r[1]) for r in rows[: len(HOSTILE)]}:
            for where, expected in (
                (UsageFilter(models=(name,)), [r for r in rows if r[0] == name]),
                (UsageFilter(providers=(provider,)), [r for r in rows if r[1] == provider]),
                (UsageFilter(features=(name,)), [r for r in rows if r[2] == name]),
                (UsageFilter(exclude_features=(name,)), [r for r in rows if r[2] != name]),
            ):
                summary = await usage_ledger.totals(tenant, where=where)
                assert summary.requests == len(expected), (name, where)
                assert summary.input_tokens == sum(r[3] for r in expected)
        models = {(m.provider, m.model) for m in await usage_ledger.by_model(tenant)}
        assert {(r[1], r[0]) for r in rows} == models
        names = {n.feature for n in await usage_ledger.names(tenant)}
        assert set(HOSTILE) | {"chat"} == names

        # a tenant's own price for a hostile model re-prices exactly that model's rows
        price = price_from_dict(
            {"id": tenant, "provider": "openai", "input": "1000", "output": "0"}, source="user"
        )
        named = [r for r in rows if r[0] == tenant]
        assert importer.set_price(tenant, price) == len(named)
        assert [(p.provider, p.id) for p in usage_ledger.price_overrides(tenant)] == [
            ("openai", tenant)
        ]
        priced = await usage_ledger.totals(tenant, where=UsageFilter(models=(tenant,)))
        # input tokens at $1,000 per million, output free
        assert priced.cost_usd == Decimal(sum(r[3] for r in named)) / 1000
        assert importer.remove_price(tenant, "openai", tenant)
        assert usage_ledger.price_overrides(tenant) == []

    # an upload id prefix with LIKE's wildcards matches only ids that start with it
    now = datetime.now(UTC)
    for upload_id in ("50%_a", "50ab", "50%_keep"):
        usage_ledger.save_upload(
            UploadStatus(
                upload_id=upload_id,
                tenant_id=HOSTILE[0],
                filename="f.csv",
                format="csv",
                state="completed",
                created_at=now,
                updated_at=now,
            )
        )
    usage_ledger.delete_uploads_like(HOSTILE[0], "50%_", keep="50%_keep")
    left = {u.upload_id for u in usage_ledger.list_uploads(HOSTILE[0], limit=100)}
    assert {"50ab", "50%_keep"} <= left and "50%_a" not in left

    for tenant in HOSTILE:
        assert usage_ledger.delete_usage(tenant) == len(rows)
        assert (await usage_ledger.totals(tenant)).requests == 0
    assert await usage_ledger.totals(VICTIM) == victim_before

    assert sent
    values = {*NEVER_IN_TEXT, *(normalize_provider(name) for name in NEVER_IN_TEXT)}
    leaked = [(value, sql) for sql in sent for value in values if value in sql]
    assert leaked == []
