"""An upload's rows are stored by time whatever the order of its file: each row group of
`usage` then covers a day or two, and a read of a few hours skips the others by their
timestamp bounds (the summary's partial hours, a week's reads)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from apex.analytics.ledger_duckdb import DuckDBLedger
from apex.analytics.schema import ARROW_SCHEMA

ROWS = 500_000
DAYS = 10
START = datetime(2026, 5, 1)


def _shuffled_days(tenant: str) -> pa.Table:
    """ROWS calls spread evenly over DAYS days, in random order."""
    order = np.random.default_rng(7).permutation(ROWS)
    micros = order * (DAYS * 86_400_000_000 // ROWS)
    stamps = pa.array(np.datetime64(START, "us") + micros.astype("timedelta64[us]"))
    columns: dict[str, pa.Array] = {}
    for field in ARROW_SCHEMA:
        if field.name == "timestamp":
            columns[field.name] = stamps
        elif field.name == "row_key":
            columns[field.name] = pa.array(order + 1, pa.uint64())
        elif field.name == "tenant_id":
            columns[field.name] = pa.array([tenant] * ROWS, field.type)
        elif pa.types.is_list(field.type):
            columns[field.name] = pa.array([[]] * ROWS, field.type)
        elif pa.types.is_string(field.type):
            columns[field.name] = pa.array(["x"] * ROWS, field.type)
        elif pa.types.is_decimal(field.type):
            columns[field.name] = pa.nulls(ROWS, field.type)
        else:
            columns[field.name] = pa.array(np.ones(ROWS, dtype=np.int64)).cast(field.type)
    return pa.table(columns, schema=ARROW_SCHEMA)


def test_an_upload_in_random_time_order_is_stored_day_by_day(tmp_path: Path) -> None:
    ledger = DuckDBLedger(tmp_path / "ledger.duckdb")
    try:
        rows = _shuffled_days("t1")
        writer = ledger.open_upload("t1", "up-1")
        for start in range(0, ROWS, 100_000):  # staged as an import stages its batches
            writer.stage(rows.slice(start, 100_000))
        assert writer.commit() == (ROWS, 0)
        groups = ledger._rows(
            "SELECT row_group_id, any_value(stats) FROM pragma_storage_info('usage') "
            "WHERE column_name = 'timestamp' GROUP BY row_group_id"
        )
    finally:
        ledger.close()
    assert len(groups) >= 4
    widest = max(
        datetime.fromisoformat(str(stats["max"])) - datetime.fromisoformat(str(stats["min"]))
        for _group, stats in groups
    )
    # a row group holds 122,880 rows (two and a half days of 50,000), filled by two threads
    # taking days in turn: about four days at most; stored in the file's order, each would
    # cover nearly the ten days
    assert widest <= timedelta(days=5), widest
