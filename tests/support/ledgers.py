"""Fresh usage ledgers on either engine, for the tests that run on both."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest


def open_usage_ledger(engine: str, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A fresh, empty usage ledger on `engine` (duckdb, or clickhouse through chDB)."""
    from apex.analytics.ledger_clickhouse import ClickHouseLedger
    from apex.analytics.ledger_duckdb import DuckDBLedger

    if engine == "duckdb":
        return DuckDBLedger(
            tmp_path / f"ledger-{uuid.uuid4().hex[:8]}.duckdb", memory_limit_mb=256, threads=2
        )
    server = request.getfixturevalue("chdb_server")
    return ClickHouseLedger(server, database=f"t_{uuid.uuid4().hex[:16]}")


def close_usage_ledger(ledger) -> None:  # type: ignore[no-untyped-def]
    if ledger.engine == "clickhouse":
        ledger.drop()
    ledger.close()
