"""Embedded ClickHouse (chDB) behind the ClickHouse ledger's connection protocol.

The ClickHouse ledger's own statements (DDL, inserts, mutations, every transpiled query) run
here unchanged, so the suite proves the ClickHouse form of the ledger without a server. chDB
allows one data path per process, so the suite starts one and gives each test its own database.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
from chdb import session

# query parameter values are read in ClickHouse's escaped text format (as clickhouse-connect
# sends them over HTTP): these characters take a backslash before them
_ESCAPES = str.maketrans({c: "\\" + c for c in ("\\", "'", "`", "\t", "\n")})


def _params(params: Mapping[str, object] | None) -> dict[str, object]:
    return {
        name: value.translate(_ESCAPES) if isinstance(value, str) else value
        for name, value in (params or {}).items()
    }


class ChdbClickHouse:
    def __init__(self, path: Path) -> None:
        self._session = session.Session(str(path))
        self._lock = threading.Lock()

    def command(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        with self._lock:
            self._session.query(sql, params=_params(params))

    def rows(self, sql: str, params: Mapping[str, object] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            table = self._session.query(sql, "ArrowTable", params=_params(params))
        if table.num_columns == 0:
            return []
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        incoming = data  # noqa: F841 - read by name by chDB's Python() table function
        names = ", ".join(f"`{name}`" for name in data.column_names)
        with self._lock:
            self._session.query(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM Python(incoming)"
            )

    def close(self) -> None:
        """Ledgers share the one embedded server of the test session: closing one is a no-op."""

    def shutdown(self) -> None:
        self._session.close()
