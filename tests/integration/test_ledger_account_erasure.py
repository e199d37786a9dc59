"""Erasing an account from the usage ledger, on DuckDB and on ClickHouse (chDB): its rows,
upload records and own prices go; `DELETE /api/usage` keeps the prices; nobody else's changes."""

from apex.analytics.ingest import UsageImporter
from apex.analytics.ledger import SqlLedger
from apex.analytics.pricing import PriceCatalog, price_from_dict
from tests.support.usage_files import import_bytes, make_usage_csv


def _tenant_with_rows_and_a_price(importer: UsageImporter, tenant: str, seed: int) -> int:
    usage = make_usage_csv(200, seed=seed)
    assert import_bytes(importer, tenant, usage.data).state == "completed"
    importer.set_price(
        tenant, price_from_dict({"id": "my-model", "input": 1, "output": 2}, source="user")
    )
    return usage.good_rows


async def test_a_deleted_account_leaves_nothing_in_the_ledger(usage_ledger: SqlLedger) -> None:
    importer = UsageImporter(usage_ledger, PriceCatalog.load(), batch_rows=700)
    gone = _tenant_with_rows_and_a_price(importer, "gone", seed=31)
    kept = _tenant_with_rows_and_a_price(importer, "kept", seed=32)
    kept_totals = await usage_ledger.totals("kept")

    assert usage_ledger.delete_usage("gone", whole_account=True) == gone
    assert (await usage_ledger.totals("gone")).requests == 0
    assert usage_ledger.list_uploads("gone") == [] and usage_ledger.price_overrides("gone") == []

    assert (await usage_ledger.totals("kept")) == kept_totals and kept_totals.requests == kept
    assert [p.id for p in usage_ledger.price_overrides("kept")] == ["my-model"]
    assert usage_ledger.delete_usage("kept") == kept  # erasing usage alone keeps own prices
    assert [p.id for p in usage_ledger.price_overrides("kept")] == ["my-model"]
