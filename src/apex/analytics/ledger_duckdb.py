"""The embedded usage ledger: one DuckDB file in the data dir.

Every call opens its own cursor (DuckDB connections are not shared across threads), and closing
waits for the calls in flight: DuckDB refuses to close a connection one of its cursors is using,
and an upload running in a worker thread can be mid-statement when the server stops. An upload
stages its finished rows in an LZ4-compressed Arrow file of its own beside the ledger file, and
the commit moves them into `usage` in one transaction with their rollups and prompt keys, minus
the row keys the tenant already has (looked for only among its rows of the staged rows' times).
Only one process opens the file, so an upload still `processing` when it opens was cut short by
a stop and is settled then (its staging file is gone with the rest of the staging dir).
Staging on disk rather than in a DuckDB temporary table keeps the ledger's buffer pool free
while a large file is read (a temporary table fills it and then spills anyway), and the commit
streams the staged rows back in.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import ipc

from apex.analytics import prompt_repeats, rollups
from apex.analytics.answers import AnswerStore
from apex.analytics.duckdb_arrow import arrow_result
from apex.analytics.ledger import SqlLedger
from apex.analytics.ledger_core import Row
from apex.analytics.memory_gate import MemoryGate, ResultT
from apex.analytics.schema import ADDED_COLUMNS, COLUMN_NAMES, COLUMNS
from apex.analytics.statement import AnyStatement, Engine, Statement, as_statement

_DUCKDB_TABLES = """
CREATE TABLE IF NOT EXISTS usage ({columns});
CREATE TABLE IF NOT EXISTS uploads (upload_id VARCHAR PRIMARY KEY, tenant_id VARCHAR NOT NULL,
    state VARCHAR NOT NULL, document VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS price_overrides (tenant_id VARCHAR NOT NULL, provider VARCHAR NOT NULL,
    model VARCHAR NOT NULL, document VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS repricing (tenant_id VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL);
"""


class DuckDBLedger(SqlLedger):
    """The embedded ledger: one DuckDB file in the data dir, a cursor per call."""

    engine: Engine = "duckdb"
    sole_writer = True
    keeps_rollups = True

    def __init__(
        self, path: Path | str, *, memory_limit_mb: int = 448, threads: int | None = None
    ) -> None:
        super().__init__(AnswerStore())
        config: dict[str, Any] = {
            "memory_limit": f"{memory_limit_mb}MB",
            "preserve_insertion_order": False,
        }
        if threads:
            config["threads"] = threads
        self._db = duckdb.connect(str(path), config=config)
        self._calls = 0
        self._closed = False
        self._calls_changed = threading.Condition()
        self.memory = MemoryGate(duckdb.OutOfMemoryException)
        self.staging_dir = Path(f"{path}.staging")
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        self.initialize()
        self.settle_interrupted_uploads()
        self.open_rollups()

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own for one call, counted until it is closed."""
        with self._calls_changed:
            if self._closed:
                raise LedgerClosed("the usage ledger is closed")
            self._calls += 1
        cursor = self._db.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            with self._calls_changed:
                self._calls -= 1
                self._calls_changed.notify_all()

    def _statement(self, statement: Callable[[duckdb.DuckDBPyConnection], ResultT]) -> ResultT:
        """One statement on a cursor of its own, through the memory gate (memory_gate.py)."""

        def attempt() -> ResultT:
            with self._cursor() as cursor:
                return statement(cursor)

        return self.memory.run(attempt)

    def _rows(self, statement: AnyStatement) -> list[Row]:
        return self._statement(lambda cursor: execute(cursor, statement).fetchall())

    def _command(self, statement: AnyStatement) -> None:
        self._statement(lambda cursor: execute(cursor, statement))

    def _arrow(self, statement: Statement) -> pa.Table:
        return self._statement(
            lambda cursor: arrow_result(cursor, statement.sql, statement.values("duckdb"))
        )

    def _rows_over(self, statement: Statement, tables: dict[str, pa.Table]) -> list[Row]:
        def run(cursor: duckdb.DuckDBPyConnection) -> list[Row]:
            for name, table in tables.items():
                cursor.register(name, table)
            return execute(cursor, statement).fetchall()

        return self._statement(run)

    def _write(self, statements: Sequence[AnyStatement]) -> None:
        self._statement(
            lambda cursor: in_transaction(
                cursor, lambda: [execute(cursor, statement) for statement in statements]
            )
        )

    def initialize(self) -> None:
        columns = ", ".join(f'"{c.name}" {c.duckdb}' for c in COLUMNS)
        for statement in _DUCKDB_TABLES.format(columns=columns).split(";"):
            if statement.strip():
                self._command(statement)
        for statement in (*self._later_columns(), *rollups.TABLES_SQL):
            self._command(statement)
        for column in ADDED_COLUMNS:
            # DuckDB adds no column with a constraint: an upgraded file's is nullable, and
            # every insert names it
            self._command(
                f'ALTER TABLE usage ADD COLUMN IF NOT EXISTS "{column.name}" '
                f"{column.duckdb.removesuffix(' NOT NULL')} DEFAULT "
                f"{column.added_default}"
            )

    def close(self) -> None:
        """New calls are refused at once; those in flight (a commit included) finish first."""
        self._stop_preparing()
        with self._calls_changed:
            self._closed = True
            self._calls_changed.wait_for(lambda: self._calls == 0)
        self._db.close()

    def open_upload(
        self, tenant_id: str, upload_id: str, *, own_calls_only: bool = False
    ) -> DuckDBUploadWriter:
        return DuckDBUploadWriter(self, tenant_id, upload_id, own_calls_only=own_calls_only)

    _UPSERT = "INSERT OR REPLACE INTO"

    def _update_statement(self, table: str, assignments: str, where: str) -> str:
        return f"UPDATE {table} SET {assignments} WHERE {where}"


def execute(
    cursor: duckdb.DuckDBPyConnection, statement: AnyStatement
) -> duckdb.DuckDBPyConnection:
    """Run a statement with DuckDB binding its values."""
    bound = as_statement(statement)
    return cursor.execute(bound.sql, bound.values("duckdb") or None)


def in_transaction(cursor: duckdb.DuckDBPyConnection, work: Callable[[], ResultT]) -> ResultT:
    """`work` on `cursor` in one transaction: all of it lands, or none (rows and their
    rollups always agree)."""
    cursor.execute("BEGIN TRANSACTION")
    try:
        result = work()
        cursor.execute("COMMIT")
    except BaseException:
        try:
            cursor.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    return result


class LedgerClosed(RuntimeError):
    """A call reached the ledger after `close` began (a worker outliving the server's stop)."""


# the most staged rows a commit merges into their hours' rollups rather than recompute them
MERGED_ROWS_AT_MOST = 250_000


class DuckDBUploadWriter:
    """One upload's rows in a staging file of its own, until commit or discard."""

    _OPTIONS = ipc.IpcWriteOptions(compression="lz4")

    def __init__(
        self, ledger: DuckDBLedger, tenant_id: str, upload_id: str, *, own_calls_only: bool = False
    ) -> None:
        self.own_calls_only = own_calls_only
        self._ledger = ledger
        self._tenant_id = tenant_id
        name = re.sub(r"[^a-z0-9]", "_", upload_id.lower())
        self._path = ledger.staging_dir / f"{name}-{id(self):x}.arrow"
        self._writer: ipc.RecordBatchFileWriter | None = None
        self._schema: pa.Schema | None = None
        self._names = ", ".join(f'"{name}"' for name in COLUMN_NAMES)
        self.staged = 0
        # the hours the staged rows fall in: the rollup hours the commit brings up to date
        self._hours: set[datetime] = set()
        # their earliest and latest timestamp
        self._span: tuple[datetime, datetime] | None = None
        # (day, index) of each record batch of the staging file
        self._days: list[tuple[int, int]] = []

    def stage(self, rows: pa.Table) -> None:
        """The rows into the staging file in time order, one record batch per day: the commit
        inserts them day after day, so `usage` is stored by time whatever the file's order
        (each row group then holds rows of a day or two, and a read of a few hours skips the
        others by their timestamp bounds)."""
        if not rows.num_rows:
            return
        rows = rows.select(list(COLUMN_NAMES)).sort_by("timestamp")
        if self._writer is None:
            self._schema = rows.schema
            self._writer = ipc.new_file(self._path, self._schema, options=self._OPTIONS)
        rows = rows.cast(self._schema)
        stamps = rows.column("timestamp")
        days = pc.floor_temporal(stamps, unit="day").cast(pa.int64()).to_numpy()
        starts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1).tolist()]
        for start, end in zip(starts, [*starts[1:], len(days)], strict=True):
            for batch in rows.slice(start, end - start).to_batches():
                self._writer.write_batch(batch)
                self._days.append((int(days[start]), len(self._days)))
        self.staged += rows.num_rows
        self._hours.update(pc.unique(pc.floor_temporal(stamps, unit="hour")).to_pylist())
        earliest, latest = (value.as_py() for value in pc.min_max(stamps).values())
        if self._span is not None:
            earliest, latest = min(earliest, self._span[0]), max(latest, self._span[1])
        self._span = (earliest, latest)

    def commit(self) -> tuple[int, int]:
        if self._writer is None:
            return 0, 0
        writer, self._writer = self._writer, None
        writer.close()
        try:
            with self._ledger.commit_lock:
                result = self._ledger._statement(self._insert_staged)
                self._ledger.rows_changed(self._tenant_id, own_calls_only=self.own_calls_only)
        finally:
            self.discard()
        inserted = int(result[0]) if result else 0
        return inserted, self.staged - inserted

    def _insert_staged(self, cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
        """The staged rows the tenant does not have yet, into `usage` (the file is read anew
        on each attempt, so the statement can run again)."""
        with pa.OSFile(str(self._path)) as source:
            staged = ipc.open_file(source)
            # one batch at a time (the commit's memory does not grow with the file), day after
            # day
            cursor.register(
                "staged",
                pa.RecordBatchReader.from_batches(
                    staged.schema,
                    (staged.get_batch(index) for _day, index in sorted(self._days)),
                ),
            )
            cursor.register(
                "touched_hours",
                pa.table({"hour_start": pa.array(sorted(self._hours), pa.timestamp("us"))}),
            )
            within = (
                "timestamp >= $first AND timestamp < $last AND date_trunc('hour', timestamp) "
                "IN (SELECT hour_start FROM touched_hours)"
            )
            bounds = {"first": min(self._hours), "last": max(self._hours) + rollups.HOUR}
            hours = "hour_start IN (SELECT hour_start FROM touched_hours)"
            days = "{day} IN (SELECT date_trunc('day', hour_start) FROM touched_hours)"
            tenant = {"tenant_id": self._tenant_id}
            # a row key hashes the row's timestamp: a row the tenant has already has a
            # timestamp among the staged rows', so only the rows between their earliest and
            # latest are looked at, however many the tenant has at other times
            assert self._span is not None
            new_rows = (
                f"SELECT {self._names} FROM staged WHERE row_key NOT IN "
                "(SELECT row_key FROM usage WHERE tenant_id = $tenant_id "
                "AND timestamp BETWEEN $earliest AND $latest)"
            )
            span = {"earliest": self._span[0], "latest": self._span[1]}
            held = Statement.of(
                f"SELECT coalesce(sum(requests), 0) FROM usage_hourly WHERE tenant_id = "
                f"$tenant_id AND {hours}",
                tenant,
            )

            def refreshed() -> tuple[Any, ...] | None:
                """The rows, then their hours' rollups recomputed from every row they hold."""
                moved = Statement.of(
                    f"INSERT INTO usage ({self._names}) {new_rows}", {**tenant, **span}
                )
                inserted = execute(cursor, moved).fetchone()
                for statement in self._ledger._rollup_refresh(
                    self._tenant_id, hours, within, days, bounds
                ):
                    execute(cursor, statement)
                return inserted

            def merged() -> tuple[Any, ...] | None:
                """The rows, then their own figures added to their hours' rollups."""
                execute(
                    cursor,
                    Statement.of(
                        f"CREATE OR REPLACE TEMP TABLE apex_fresh AS {new_rows}",
                        {**tenant, **span},
                    ),
                )
                inserted = cursor.execute(
                    f"INSERT INTO usage ({self._names}) SELECT {self._names} FROM apex_fresh"
                ).fetchone()
                for statement in rollups.merge_statements(
                    self._tenant_id, "apex_fresh", hours, days
                ):
                    execute(cursor, statement)
                cursor.execute("DROP TABLE apex_fresh")
                return inserted

            def insert() -> tuple[Any, ...] | None:
                last = cursor.execute("SELECT coalesce(max(rowid), -1) FROM usage").fetchall()
                # merging costs the staged rows (held in memory a moment), recomputing costs
                # every row of their hours
                merging = False
                if self.staged <= MERGED_ROWS_AT_MOST:
                    hour_rows = execute(cursor, held).fetchone()
                    merging = hour_rows is not None and int(hour_rows[0]) > self.staged
                inserted = merged() if merging else refreshed()
                # the rows this transaction added are those past the table's last row id
                for statement in prompt_repeats.added_statements(
                    self._tenant_id, "rowid > $last", {"last": last[0][0]}
                ):
                    execute(cursor, statement)
                return inserted

            return in_transaction(cursor, insert)

    def discard(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except (OSError, pa.ArrowException):
                pass
            self._writer = None
        self._path.unlink(missing_ok=True)
