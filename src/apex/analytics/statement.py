"""A ledger statement and the values of its placeholders, which the engine binds.

No value ever becomes part of a statement's text: the text holds a placeholder for it, in the
engine's own syntax (`$name` for DuckDB, `{name:Type}` for ClickHouse, bound server-side by
clickhouse-connect and chDB), and the value travels beside it. A hostile tenant id, model name
or upload id therefore cannot change what a statement does, whatever quoting it carries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

Engine = Literal["duckdb", "clickhouse"]
Value = str | int | float | bool | datetime | Decimal


def naive_utc(value: datetime) -> datetime:
    """The ledger's timestamps are UTC without a zone (both engines store them so)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def clickhouse_type(value: Value) -> str:
    """The ClickHouse type a value is bound as (a decimal travels as text, and the statement
    casts it to the precision it needs)."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, datetime):
        return "DateTime64(6, 'UTC')"
    if isinstance(value, str | Decimal):
        return "String"
    raise TypeError(f"no ClickHouse type for a {type(value).__name__} parameter")


def placeholder(engine: Engine, name: str, value: Value) -> str:
    """Where `value`, bound under `name`, goes in a statement's text."""
    if engine == "clickhouse":
        return f"{{{name}:{clickhouse_type(value)}}}"
    return f"${name}"


def _used(sql: str, name: str) -> bool:
    return re.search(rf"\${re.escape(name)}(?!\w)|\{{{re.escape(name)}:", sql) is not None


@dataclass(frozen=True)
class Statement:
    """SQL text with placeholders, and the value of each. Hashable, so a statement with its
    values keys a stored answer."""

    sql: str
    params: tuple[tuple[str, Value], ...] = ()

    @classmethod
    def of(cls, sql: str, values: Mapping[str, Value] | None = None) -> Statement:
        """The statement with the values its text uses (DuckDB refuses a value it has no
        placeholder for, so statements built from shared conditions take only theirs)."""
        if not values:
            return cls(sql)
        return cls(
            sql,
            tuple(
                (name, naive_utc(value) if isinstance(value, datetime) else value)
                for name, value in values.items()
                if _used(sql, name)
            ),
        )

    def values(self, engine: Engine) -> dict[str, object]:
        """The values as the engine's client takes them: a decimal as plain text (the statement
        casts it to its precision), a time as text for ClickHouse (UTC, microseconds)."""
        values: dict[str, object] = {}
        for name, value in self.params:
            if isinstance(value, Decimal):
                values[name] = format(value, "f")
            elif isinstance(value, datetime) and engine == "clickhouse":
                values[name] = value.strftime("%Y-%m-%d %H:%M:%S.%f")
            else:
                values[name] = value
        return values


class Binder:
    """Numbered placeholders for the values of a statement written in Python: each call keeps
    a value and returns where it goes; `statement` pairs the text with the values it uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._values: dict[str, Value] = {}

    def __call__(self, value: Value) -> str:
        name = f"v{len(self._values)}"
        self._values[name] = value
        return placeholder(self.engine, name, value)

    @property
    def values(self) -> dict[str, Value]:
        """Every value kept so far, by placeholder name (for statements built apart that
        share conditions)."""
        return dict(self._values)

    def statement(self, sql: str) -> Statement:
        return Statement.of(sql, self._values)


AnyStatement = Statement | str


def as_statement(statement: AnyStatement) -> Statement:
    """A statement of fixed text (DDL, a constant read) needs no values."""
    return statement if isinstance(statement, Statement) else Statement(statement)
