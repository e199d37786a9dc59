"""The scaled usage ledger on ClickHouse (clickhouse-connect), or chDB in the tests.

An upload is staged in `usage_staging` under its id; the commit copies it into `usage` minus
the row keys the tenant already has, then deletes the staged rows. Deletes and updates are
mutations run with `mutations_sync = 2`, so they have finished when the call returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pyarrow as pa

from apex.analytics.commit_lock import SharedCommitLock
from apex.analytics.ledger import SqlLedger
from apex.analytics.ledger_core import Row
from apex.analytics.row_values import as_int
from apex.analytics.schema import ADDED_COLUMNS, COLUMN_NAMES, COLUMNS
from apex.analytics.statement import AnyStatement, Engine, as_statement
from apex.errors import ServiceUnavailable


class ClickHouseConnection(Protocol):
    """What the ClickHouse ledger needs from a client: statements whose `{name:Type}`
    placeholders it binds server-side from `params`, and Arrow inserts."""

    def command(self, sql: str, params: Mapping[str, object] | None = None) -> None: ...
    def rows(self, sql: str, params: Mapping[str, object] | None = None) -> list[Row]: ...
    def insert_arrow(self, table: str, data: pa.Table) -> None: ...
    def close(self) -> None: ...


class HttpClickHouse:
    """A ClickHouse server over HTTP (clickhouse-connect), for `APEX_CLICKHOUSE_URL`.

    The client connects on first use, so the API starts (and /health/ready names ClickHouse)
    while the server is down; a call that cannot reach it raises ServiceUnavailable.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Any = None
        self._lock = threading.Lock()

    def _call(self, action: Callable[[Any], Any]) -> Any:
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import OperationalError

        try:
            with self._lock:
                if self._client is None:
                    self._client = clickhouse_connect.get_client(
                        dsn=self._url, autogenerate_session_id=False
                    )
            return action(self._client)
        except OperationalError as exc:
            raise ServiceUnavailable(
                "The usage ledger (ClickHouse) cannot be reached.", code="ledger_unavailable"
            ) from exc

    def command(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        self._call(lambda client: client.command(sql, parameters=params))

    def rows(self, sql: str, params: Mapping[str, object] | None = None) -> list[Row]:
        rows: list[Row] = self._call(
            lambda client: list(client.query(sql, parameters=params).result_rows)
        )
        return rows

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        database, _, name = table.rpartition(".")
        self._call(lambda client: client.insert_arrow(name, data, database=database or None))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class ClickHouseLedger(SqlLedger):
    """The scaled ledger. MergeTree ordered by tenant and time; mutations run synchronously.
    Several servers may share it; they then need `commit_lock`, a lock Redis shares."""

    engine: Engine = "clickhouse"

    def __init__(
        self,
        connection: ClickHouseConnection,
        *,
        database: str = "apex",
        commit_lock: SharedCommitLock | None = None,
    ) -> None:
        super().__init__(commit_lock=commit_lock)
        self._connection = connection
        self.database = database
        self._ready = False
        self._ready_lock = threading.Lock()

    def _ensure_tables(self) -> None:
        """Create the tables on first use (the server may come up after the API)."""
        if self._ready:
            return
        with self._ready_lock:
            if not self._ready:
                self.initialize()
                self._ready = True

    def _rows(self, statement: AnyStatement) -> list[Row]:
        self._ensure_tables()
        bound = as_statement(statement)
        return self._connection.rows(bound.sql, bound.values("clickhouse"))

    def _command(self, statement: AnyStatement) -> None:
        self._ensure_tables()
        bound = as_statement(statement)
        self._connection.command(bound.sql, bound.values("clickhouse"))

    def _insert(self, table: str, data: pa.Table) -> None:
        self._ensure_tables()
        self._connection.insert_arrow(self._table(table), data)

    def initialize(self) -> None:
        columns = ", ".join(f"`{c.name}` {c.clickhouse}" for c in COLUMNS)
        self._connection.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        for table in ("usage", "usage_staging"):
            self._connection.command(
                f"CREATE TABLE IF NOT EXISTS {self._table(table)} ({columns}) ENGINE = MergeTree "
                "ORDER BY (tenant_id, timestamp, row_key)"
            )
        self._connection.command(
            f"CREATE TABLE IF NOT EXISTS {self._table('uploads')} (upload_id String, tenant_id "
            "String, state String, document String, created_at DateTime64(6, 'UTC'), updated_at "
            "DateTime64(6, 'UTC')) ENGINE = ReplacingMergeTree(updated_at) "
            "ORDER BY (tenant_id, upload_id)"
        )
        self._connection.command(
            f"CREATE TABLE IF NOT EXISTS {self._table('price_overrides')} (tenant_id String, "
            "provider String, model String, document String) ENGINE = MergeTree "
            "ORDER BY (tenant_id, provider, model)"
        )
        self._connection.command(
            f"CREATE TABLE IF NOT EXISTS {self._table('repricing')} (tenant_id String, "
            "started_at DateTime64(6, 'UTC')) ENGINE = MergeTree ORDER BY tenant_id"
        )
        for statement in self._later_columns():
            self._connection.command(statement)
        for table in ("usage", "usage_staging"):
            for column in ADDED_COLUMNS:
                self._connection.command(
                    f"ALTER TABLE {self._table(table)} ADD COLUMN IF NOT EXISTS `{column.name}` "
                    f"{column.clickhouse} DEFAULT {column.added_default}"
                )

    _TIMESTAMP_TYPE = "DateTime64(6, 'UTC')"
    _EPOCH = "toDateTime64('1970-01-01 00:00:00', 6, 'UTC')"
    _STARTS_WITH = "startsWith"

    def close(self) -> None:
        self._connection.close()
        if isinstance(self.commit_lock, SharedCommitLock):
            self.commit_lock.close()

    def drop(self) -> None:
        """Remove the ledger's whole database (a decommissioned deployment, a test)."""
        self._connection.command(f"DROP DATABASE IF EXISTS {self.database}")
        self._ready = False

    def _uploads_source(self) -> str:
        return f"{self._table('uploads')} FINAL"

    _TENANT_TABLES = ("usage", "usage_staging", "uploads")

    def open_upload(
        self, tenant_id: str, upload_id: str, *, own_calls_only: bool = False
    ) -> ClickHouseUploadWriter:
        return ClickHouseUploadWriter(self, tenant_id, upload_id, own_calls_only=own_calls_only)

    def _delete_statement(self, table: str, where: str) -> str:
        """A mutation that has finished on every replica before it returns."""
        return f"ALTER TABLE {self._table(table)} DELETE WHERE {where} SETTINGS mutations_sync = 2"

    def _update_statement(self, table: str, assignments: str, where: str) -> str:
        return (
            f"ALTER TABLE {self._table(table)} UPDATE {assignments} WHERE {where} "
            "SETTINGS mutations_sync = 2"
        )


class ClickHouseUploadWriter:
    """One upload's rows in `usage_staging`, until commit or discard."""

    def __init__(
        self,
        ledger: ClickHouseLedger,
        tenant_id: str,
        upload_id: str,
        *,
        own_calls_only: bool = False,
    ) -> None:
        self.own_calls_only = own_calls_only
        self._ledger = ledger
        self._tenant_id = tenant_id
        self._bind = ledger._binder()
        self._tenant = f"tenant_id = {self._bind(tenant_id)}"
        self._where = f"{self._tenant} AND upload_id = {self._bind(upload_id)}"
        self.staged = 0

    def stage(self, rows: pa.Table) -> None:
        if rows.num_rows:
            self._ledger._insert("usage_staging", rows.select(list(COLUMN_NAMES)))
            self.staged += rows.num_rows

    def commit(self) -> tuple[int, int]:
        ledger = self._ledger
        names = ", ".join(f"`{name}`" for name in COLUMN_NAMES)
        usage, staging = ledger._table("usage"), ledger._table("usage_staging")
        bind = self._bind
        with ledger.commit_lock:
            ledger._command(
                bind.statement(
                    f"INSERT INTO {usage} ({names}) SELECT {names} FROM {staging} WHERE "
                    f"{self._where} AND row_key NOT IN (SELECT row_key FROM {usage} "
                    f"WHERE {self._tenant})"
                )
            )
            inserted = as_int(
                ledger._rows(bind.statement(f"SELECT count(*) FROM {usage} WHERE {self._where}"))[
                    0
                ][0]
            )
            ledger.rows_changed(self._tenant_id, own_calls_only=self.own_calls_only)
        self.discard()
        return inserted, self.staged - inserted

    def discard(self) -> None:
        self._ledger._delete(self._bind, "usage_staging", self._where)
