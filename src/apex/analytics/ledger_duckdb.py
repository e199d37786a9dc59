"""The embedded usage ledger: one DuckDB file in the data dir.

Every call opens its own cursor (DuckDB connections are not shared across threads); an upload
stages its rows in a temporary table on its own cursor, and the commit moves them into `usage`
in one statement, minus the row keys the tenant already has.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from apex.analytics import queries as q
from apex.analytics.answers import AnswerStore
from apex.analytics.ledger import Row, SqlLedger, naive_utc
from apex.analytics.schema import COLUMN_NAMES, COLUMNS

_DUCKDB_TABLES = """
CREATE TABLE IF NOT EXISTS usage ({columns});
CREATE TABLE IF NOT EXISTS uploads (upload_id VARCHAR PRIMARY KEY, tenant_id VARCHAR NOT NULL,
    state VARCHAR NOT NULL, document VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS price_overrides (tenant_id VARCHAR NOT NULL, provider VARCHAR NOT NULL,
    model VARCHAR NOT NULL, document VARCHAR NOT NULL);
"""


class DuckDBLedger(SqlLedger):
    """The embedded ledger: one DuckDB file in the data dir, a cursor per call."""

    engine: q.Engine = "duckdb"

    def __init__(self, path: Path | str, *, memory_limit_mb: int = 448,
                 threads: int | None = None) -> None:
        super().__init__(AnswerStore())
        config: dict[str, Any] = {"memory_limit": f"{memory_limit_mb}MB",
                                  "preserve_insertion_order": False}
        if threads:
            config["threads"] = threads
        self._db = duckdb.connect(str(path), config=config)
        self.initialize()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self._db.cursor()

    def _rows(self, sql: str) -> list[Row]:
        cursor = self._cursor()
        try:
            return cursor.execute(sql).fetchall()
        finally:
            cursor.close()

    def _command(self, sql: str) -> None:
        cursor = self._cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    def initialize(self) -> None:
        columns = ", ".join(f'"{c.name}" {c.duckdb}' for c in COLUMNS)
        for statement in _DUCKDB_TABLES.format(columns=columns).split(";"):
            if statement.strip():
                self._command(statement)

    def close(self) -> None:
        self._stop_preparing()
        self._db.close()

    def open_upload(self, tenant_id: str, upload_id: str) -> "DuckDBUploadWriter":
        return DuckDBUploadWriter(self, tenant_id, upload_id)

    _UPSERT = "INSERT OR REPLACE INTO"

    def _timestamp_sql(self, value: datetime) -> str:
        return f"TIMESTAMP '{naive_utc(value).isoformat(' ')}'"

    def _update(self, table: str, assignments: str, where: str) -> None:
        self._command(f"UPDATE {table} SET {assignments} WHERE {where}")


class DuckDBUploadWriter:
    """One upload's rows in a temporary table of its own cursor, until commit or discard."""

    def __init__(self, ledger: DuckDBLedger, tenant_id: str, upload_id: str) -> None:
        self._ledger = ledger
        self._tenant_id = tenant_id
        self._tenant = ledger._literal(tenant_id)
        self._cursor = ledger._cursor()
        self._table = "staging_" + re.sub(r"[^a-z0-9]", "_", upload_id.lower())
        columns = ", ".join(f'"{c.name}" {c.duckdb}' for c in COLUMNS)
        self._cursor.execute(f"CREATE TEMP TABLE {self._table} ({columns})")
        self._names = ", ".join(f'"{name}"' for name in COLUMN_NAMES)
        self.staged = 0

    def stage(self, rows: pa.Table) -> None:
        if not rows.num_rows:
            return
        self._cursor.register("incoming", rows.select(list(COLUMN_NAMES)))
        try:
            self._cursor.execute(f"INSERT INTO {self._table} ({self._names}) "
                                 f"SELECT {self._names} FROM incoming")
        finally:
            self._cursor.unregister("incoming")
        self.staged += rows.num_rows

    def commit(self) -> tuple[int, int]:
        with self._ledger._commit_lock:
            result = self._cursor.execute(
                f"INSERT INTO usage ({self._names}) SELECT {self._names} FROM {self._table} "
                f"WHERE row_key NOT IN (SELECT row_key FROM usage WHERE tenant_id = "
                f"{self._tenant})").fetchone()
            self._ledger.rows_changed(self._tenant_id)
        inserted = int(result[0]) if result else 0
        self.discard()
        return inserted, self.staged - inserted

    def discard(self) -> None:
        try:
            self._cursor.execute(f"DROP TABLE IF EXISTS {self._table}")
        finally:
            self._cursor.close()
