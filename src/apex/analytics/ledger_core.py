"""The base of the usage ledger: one engine, tenant-scoped statements, rollups and answers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any, TypeVar

import pyarrow as pa

from apex.analytics import prompt_repeats, rollups
from apex.analytics import queries as q
from apex.analytics.answers import AnswerStore
from apex.analytics.commit_lock import SharedCommitLock
from apex.analytics.filters import EVERY_ROW, OWN_CALLS_FEATURE, UsageFilter
from apex.analytics.periods import ALL_TIME
from apex.analytics.results import UsagePeriod
from apex.analytics.row_values import as_int
from apex.analytics.statement import AnyStatement, Binder, Engine, Statement, Value, naive_utc
from apex.config.logging import get_logger

# a tenant with at most this many rows gets exact percentiles, read from its rows (fast at this
# size); a larger one gets them from the rollups' latency sketch, within sketch.RELATIVE_ERROR
EXACT_PERCENTILES_UP_TO = 500_000
# how long a `processing` record may go unsaved before its import counts as gone
ABANDONED_AFTER = timedelta(minutes=15)
ResultT = TypeVar("ResultT")
Row = tuple[Any, ...]
log = get_logger(__name__)


class LedgerCore:
    """What every part of the ledger stands on: the engine's hooks, the tenant-scoped
    statements of `queries.py` (from the rows or the rollups), the answer store in front of
    them, and the commit lock."""

    engine: Engine
    database: str | None = None
    # True when no other process writes to the ledger (the embedded file): what a stop cut
    # short is then settled when it opens, without waiting for it to go quiet
    sole_writer: bool = False
    # True on an engine that keeps hourly rollups of the rows (rollups.py) in the transaction
    # that writes them
    keeps_rollups: bool = False

    def __init__(
        self, answers: AnswerStore | None = None, *, commit_lock: SharedCommitLock | None = None
    ) -> None:
        # Held by every write that changes which rows a tenant has or what they cost. Reentrant,
        # so a caller can hold it across several writes that must not interleave with a commit
        # (an override saved and the rows re-priced; an upload committed and checked against
        # the overrides). Per process, unless servers sharing a ClickHouse ledger pass one
        # that Redis shares (`commit_lock.py`).
        self.commit_lock: AbstractContextManager[Any] = commit_lock or threading.RLock()
        # True when holding the lock means no write of any process is under way: a mark or a
        # record of one that is still there was then cut short
        self.writes_alone = self.sole_writer or commit_lock is not None
        self.answers = answers
        self._preparing: dict[str, bool] = {}
        self._preparers: list[threading.Thread] = []
        self._preparing_lock = threading.Lock()
        self._closing = threading.Event()
        # reads use the rollups of every tenant once `_rollups_built`, before that only those
        # of the tenants built so far (a ledger file from before the rollups, see rollups.py)
        self.serve_from_rollups = True
        self.exact_percentiles_up_to = EXACT_PERCENTILES_UP_TO
        self.abandoned_after = ABANDONED_AFTER
        self._rollups_built = False
        self._built_tenants: set[str] = set()
        self._edge_locks = [threading.Lock() for _ in range(64)]

    # -- engine hooks (synchronous; always called from a worker thread) --------------------
    def _rows(self, statement: AnyStatement) -> list[Row]:
        raise NotImplementedError

    def _command(self, statement: AnyStatement) -> None:
        raise NotImplementedError

    def _insert(self, table: str, data: pa.Table) -> None:
        raise NotImplementedError

    def _update_statement(self, table: str, assignments: str, where: str) -> str:
        raise NotImplementedError

    def _write(self, statements: Sequence[AnyStatement]) -> None:
        """Statements that must land together: one transaction where the engine has them
        (DuckDB), else one after the other."""
        for statement in statements:
            self._command(statement)

    _UPSERT = "INSERT INTO"
    _STARTS_WITH = "starts_with"

    def initialize(self) -> None:
        raise NotImplementedError

    # an engine's timestamp column type, as `price_overrides.saved_at` declares it, and the
    # epoch in it (a column default: DDL takes no parameters, and this is no caller's value)
    _TIMESTAMP_TYPE = "TIMESTAMP"
    _EPOCH = "TIMESTAMP '1970-01-01 00:00:00'"

    def _later_columns(self) -> list[str]:
        """Columns added to a table after its first release, for `initialize` to run: a ledger
        created earlier gets them when it opens (rows already there get the default)."""
        return [
            (
                f"ALTER TABLE {self._table('price_overrides')} ADD COLUMN IF NOT EXISTS "
                f"saved_at {self._TIMESTAMP_TYPE} DEFAULT {self._EPOCH}"
            )
        ]

    def close(self) -> None:
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------
    def _table(self, name: str) -> str:
        return f"{self.database}.{name}" if self.database else name

    def _binder(self) -> Binder:
        """Placeholders for the values of a statement written here (statement.py)."""
        return Binder(self.engine)

    def _query(
        self,
        query: q.LedgerQuery,
        tenant_id: str,
        period: UsagePeriod | None,
        where: UsageFilter = EVERY_ROW,
        **values: Value,
    ) -> list[Row]:
        if self._rollups_serve(query, tenant_id):
            return self._rollup_query(query, tenant_id, period, where)
        scope = period or ALL_TIME
        statement = q.render(
            query.narrowed(where),
            self.engine,
            tenant_id=tenant_id,
            start=naive_utc(scope.start),
            end=naive_utc(scope.end),
            database=self.database,
            **values,
            **q.filter_values(where),
        )
        if self.answers is None:
            return self._rows(statement)
        return self.answers.rows(
            tenant_id,
            statement,
            lambda: self._rows(statement),
            blind_to_own_calls=where.excludes(OWN_CALLS_FEATURE),
        )

    # -- rollups ----------------------------------------------------------------------------
    def _rollups_serve(self, query: q.LedgerQuery, tenant_id: str) -> bool:
        """Whether the rollups answer `query` for the tenant: they hold its figures, are built
        for the tenant, and any percentile in it may be approximate (a large tenant)."""
        if query.name not in rollups.READS or not self._rollups_ready(tenant_id):
            return False
        return (
            query.name not in rollups.WITH_PERCENTILES
            or self._rollup_requests(tenant_id) > self.exact_percentiles_up_to
        )

    def _rollups_ready(self, tenant_id: str) -> bool:
        """Whether reads of the tenant may use what is kept at commit (the rollups and the
        prompt repeats): the engine keeps them, they are built for the tenant, and serving
        from them is on."""
        return (
            self.keeps_rollups
            and self.serve_from_rollups
            and (self._rollups_built or tenant_id in self._built_tenants)
        )

    def _rollup_requests(self, tenant_id: str) -> int:
        return as_int(
            self._rows(
                Statement.of(
                    "SELECT sum(requests) FROM usage_hourly WHERE tenant_id = $tenant_id",
                    {"tenant_id": tenant_id},
                )
            )[0][0]
        )

    def _rollup_query(
        self, query: q.LedgerQuery, tenant_id: str, period: UsagePeriod | None, where: UsageFilter
    ) -> list[Row]:
        """`query`'s rows, in its shape, from the rollups of the period's whole hours and the
        rows of its partial hours (rollups.py), percentiles from the latency sketch."""
        scope = period or ALL_TIME
        start, end = naive_utc(scope.start), naive_utc(scope.end)
        edges = rollups.Edges.of(start, end)
        sums, sketched = rollups.statements(query.name, where, edges.partial)
        values: dict[str, Value] = {
            "hour_start": edges.hour_start,
            "hour_end": edges.hour_end,
            "day_start": edges.day_start,
            "day_end": edges.day_end,
            **q.filter_values(where),
        }

        def render(statement: q.LedgerQuery) -> Statement:
            return q.render(
                statement,
                self.engine,
                tenant_id=tenant_id,
                start=start,
                end=end,
                database=self.database,
                **values,
            )

        blind = where.excludes(OWN_CALLS_FEATURE)
        edge_sql = {
            name: render(statement) for name, statement in rollups.edge_statements(where).items()
        }
        sql = [render(statement) for statement in (sums, sketched) if statement is not None]

        def edge_rows(name: str) -> pa.Table:
            # reads of one period asked at once (a chat run's) scan its edges once: the others
            # wait for the first and are served what it stored
            key = edge_sql[name]
            with self._edge_locks[hash(key) % len(self._edge_locks)]:
                return self._stored(tenant_id, key, lambda: [self._arrow(key)], blind)[0]

        def over_edges(statement: Statement, name: str) -> list[Row]:
            return self._rows_over(statement, {name: edge_rows(name)} if edges.partial else {})

        def compute() -> list[Row]:
            rows = over_edges(sql[0], "edge_hourly")
            if len(sql) == 1:
                return rows
            sketch_rows = over_edges(sql[1], "edge_sketch")
            return rollups.with_quantiles(rollups.READS[query.name], rows, sketch_rows)

        return self._stored(tenant_id, tuple(sql), compute, blind)

    def _stored(
        self,
        tenant_id: str,
        key: Hashable,
        compute: Callable[[], list[Any]],
        blind_to_own_calls: bool,
    ) -> list[Any]:
        """`compute()`, through the answer store when there is one."""
        if self.answers is None:
            return compute()
        return self.answers.rows(tenant_id, key, compute, blind_to_own_calls=blind_to_own_calls)

    def _arrow(self, statement: Statement) -> pa.Table:
        """A statement's result as an Arrow table (engines with rollups)."""
        raise NotImplementedError

    def _rows_over(self, statement: Statement, tables: dict[str, pa.Table]) -> list[Row]:
        """A statement's rows, with `tables` readable by name in it (engines with rollups)."""
        raise NotImplementedError

    def _rollup_refresh(
        self,
        tenant_id: str,
        rollup_rows: str = "TRUE",
        raw_rows: str = "TRUE",
        day_rows: str | None = "TRUE",
        values: Mapping[str, Value] | None = None,
    ) -> list[Statement]:
        """The statements that bring the tenant's rollups matching `rollup_rows` back in line
        with its rows matching `raw_rows` (rollups.refresh_statements, `values`: those of the
        conditions' placeholders; none on an engine without rollups)."""
        if not self.keeps_rollups:
            return []
        return rollups.refresh_statements(tenant_id, rollup_rows, raw_rows, day_rows, values)

    def _rollup_rebuild(self, tenant_id: str) -> list[Statement]:
        """The statements that build everything kept at commit for the tenant (its rollups,
        its prompt repeats) from its rows as they are now (none on an engine without)."""
        if not self.keeps_rollups:
            return []
        return [*self._rollup_refresh(tenant_id), *prompt_repeats.rebuilt_statements(tenant_id)]

    def _repeated_calls_refresh(
        self, tenant_id: str, rows: str, values: Mapping[str, Value]
    ) -> list[Statement]:
        """The statements that copy the tenant's repeated calls matching `rows` again (their
        cost changed: prompt_repeats.py), none on an engine that keeps no copy."""
        if not self.keeps_rollups:
            return []
        return prompt_repeats.repriced_statements(tenant_id, rows, values)

    def _rollup_erase(self, tenant_id: str) -> list[Statement]:
        return rollups.erase_statements(tenant_id) if self.keeps_rollups else []

    def open_rollups(self) -> threading.Thread | None:
        """When the ledger opens: its rollups are ready, or (a file from before them) get
        built tenant by tenant in a background thread, returned, while reads use the rows."""
        if not self.keeps_rollups:
            return None
        built = self._rows(rollups.BUILT_SQL)
        if built and built[0][0] == rollups.ROLLUP_VERSION:
            self._rollups_built = True
            return None
        self._write(rollups.RECREATE_SQL)
        if not self._rows("SELECT 1 FROM usage LIMIT 1"):
            self._command(rollups.MARK_BUILT_SQL)
            self._rollups_built = True
            return None
        return self._start_preparer(self._build_rollups)

    def _build_rollups(self) -> None:
        """Build every tenant's rollups, each in one transaction under the commit lock (an
        upload committed meanwhile refreshes the hours it touched; a tenant built is whole)."""
        try:
            while not self._closing.is_set():
                with self.commit_lock:
                    pending = [
                        row[0]
                        for row in self._rows("SELECT DISTINCT tenant_id FROM usage")
                        if row[0] not in self._built_tenants
                    ]
                    if not pending:
                        self._command(rollups.MARK_BUILT_SQL)
                        self._rollups_built = True
                        log.info("ledger.rollups_built", tenants=len(self._built_tenants))
                        return
                for tenant_id in pending:
                    if self._closing.is_set():
                        return
                    with self.commit_lock:
                        self._write(self._rollup_rebuild(tenant_id))
                        self._built_tenants.add(tenant_id)
        except Exception as exc:
            log.warning("ledger.rollups_build_failed", error=str(exc))

    def rows_changed(self, tenant_id: str, *, own_calls_only: bool = False) -> None:
        """Every write to a tenant's rows ends here: stored answers about them are void (those
        that leave out the platform's own calls stay when only such calls were written)."""
        if self.answers is not None:
            self.answers.changed(tenant_id, own_calls_only=own_calls_only)

    def _start_preparer(self, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, name="apex-ledger-answers", daemon=True)
        # started under the lock: `wait_for_answers` never joins it unstarted
        with self._preparing_lock:
            self._preparers = [t for t in self._preparers if t.is_alive()] + [thread]
            thread.start()
        return thread

    def wait_for_answers(self, timeout: float | None = None) -> None:
        """Until the background passes started so far have ended."""
        with self._preparing_lock:
            preparers = list(self._preparers)
        for thread in preparers:
            thread.join(timeout)

    def _stop_preparing(self) -> None:
        """Before closing: no new pass starts, and running ones end after their current read."""
        self._closing.set()
        self.wait_for_answers()

    async def _run(self, function: Callable[..., ResultT], *args: Any) -> ResultT:
        """A read in a worker thread: the engines block, the event loop must not."""
        return await asyncio.to_thread(function, *args)

    def _delete_statement(self, table: str, where: str) -> str:
        return f"DELETE FROM {self._table(table)} WHERE {where}"

    def _delete(self, bind: Binder, table: str, where: str) -> None:
        """Delete the rows of `table` matching `where`, whose placeholders `bind` gave."""
        self._command(bind.statement(self._delete_statement(table, where)))
