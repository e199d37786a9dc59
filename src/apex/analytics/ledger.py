"""The usage ledger: one typed, tenant-scoped surface over DuckDB (embedded) or ClickHouse.

`Ledger` is the protocol the API and the agents call; `SqlLedger` implements it once over the
statements of `queries.py`, and `DuckDBLedger` (ledger_duckdb.py) / `ClickHouseLedger`
(ledger_clickhouse.py) only say how a statement is run and how rows get in. Every read takes
the caller's tenant id and filters by it: there is no unscoped read of usage rows. Engine work
runs in a worker thread (`asyncio.to_thread`) with its own cursor, so a slow query never blocks
the event loop.

Re-uploads: each row carries `row_key`, a hash of its normalized content (and of the source's
request id when it has one). An upload is staged, then moved into the ledger minus the rows
whose key the tenant already has, so sending the same file twice, or overlapping exports,
counts each call once.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from apex.analytics import queries as q
from apex.analytics import rollups
from apex.analytics.answers import AnswerStore
from apex.analytics.commit_lock import SharedCommitLock
from apex.analytics.filters import (
    ANALYSED_ROWS,
    EVERY_ROW,
    OWN_CALLS_FEATURE,
    UsageFilter,
    analysed_rows,
)
from apex.analytics.pricing import ModelPrice, PriceCatalog, Rates, price_from_dict
from apex.analytics.results import (
    BatchableGroup,
    BatchableShare,
    ColumnCoverage,
    DayModelUsage,
    DayUsage,
    DuplicateGroup,
    DuplicatePrompts,
    ErrorGroup,
    ErrorRetryWaste,
    FeatureUsage,
    HourOfDay,
    HourProfile,
    LatencyReport,
    LatencyStats,
    LedgerBounds,
    ModelFeatureUsage,
    ModelUsage,
    PrefixGroup,
    RepeatedPrompt,
    RetryGroup,
    SharedPrefixes,
    TagUsage,
    TimeSpan,
    TokenOutlierGroup,
    UsageNames,
    UsagePeriod,
    UsageSummary,
    UsageTotals,
)
from apex.analytics.schema import COST_PRECISION, COST_SCALE, MAX_CALL_COST
from apex.analytics.statement import AnyStatement, Binder, Engine, Statement, Value, naive_utc
from apex.analytics.uploads import UploadStatus
from apex.config.logging import get_logger

ALL_TIME = UsagePeriod(start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC))
DEFAULT_WINDOW = timedelta(days=30)
# a tenant with at most this many rows gets exact percentiles, read from its rows (fast at this
# size); a larger one gets them from the rollups' latency sketch, within sketch.RELATIVE_ERROR
EXACT_PERCENTILES_UP_TO = 500_000
MIN_OUTLIER_REQUESTS = 20
ResultT = TypeVar("ResultT")
log = get_logger(__name__)
Row = tuple[Any, ...]

_UPLOAD_COLUMNS = ("upload_id", "tenant_id", "state", "document", "created_at", "updated_at")


class Ledger(Protocol):
    """What callers may ask of the usage ledger. Every method is scoped by `tenant_id`; `where`
    narrows a read further to named models, providers and features."""

    async def summary(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> UsageSummary: ...
    async def totals(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> UsageTotals: ...
    async def by_model(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[ModelUsage]: ...
    async def by_feature(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[FeatureUsage]: ...
    async def by_tag(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[TagUsage]: ...
    async def by_day(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[DayUsage]: ...
    async def by_model_feature(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[ModelFeatureUsage]: ...
    async def latency_percentiles(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        *,
        overall: bool = True,
        where: UsageFilter = EVERY_ROW,
    ) -> LatencyReport: ...
    async def error_retry_waste(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> ErrorRetryWaste: ...
    async def duplicate_prompts(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        top: int = 10,
        *,
        where: UsageFilter = EVERY_ROW,
    ) -> DuplicatePrompts: ...
    async def shared_prefixes(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> SharedPrefixes: ...
    async def token_outliers(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        kind: str = "output",
        min_requests: int = MIN_OUTLIER_REQUESTS,
        *,
        where: UsageFilter = EVERY_ROW,
    ) -> list[TokenOutlierGroup]: ...
    async def hour_of_day(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> HourOfDay: ...
    async def batchable_share(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> BatchableShare: ...
    async def coverage(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> ColumnCoverage: ...
    async def period_bounds(
        self, tenant_id: str, *, where: UsageFilter = EVERY_ROW
    ) -> LedgerBounds: ...
    async def names(self, tenant_id: str) -> list[UsageNames]: ...
    async def default_period(self, tenant_id: str) -> UsagePeriod | None: ...


class UploadWriter(Protocol):
    """An upload in progress: staged rows are invisible until `commit`."""

    def stage(self, rows: pa.Table) -> None: ...
    def commit(self) -> tuple[int, int]: ...
    def discard(self) -> None: ...


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {value!r}")
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def default_period_ending(newest: datetime) -> UsagePeriod:
    """The 30 days that end at the caller's newest row (PROTOCOL.md section 4), on whole
    milliseconds (as the report shows times) and with the newest row inside."""
    end = newest.replace(microsecond=newest.microsecond // 1000 * 1000) + timedelta(milliseconds=1)
    return UsagePeriod(start=end - DEFAULT_WINDOW, end=end)


def _decimal(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value)


def as_int(value: Any) -> int:
    return 0 if value is None else int(value)


def _float(value: Any) -> float | None:
    """Percentiles to 6 decimals: the engines may differ in the last bit of a double."""
    if value is None or math.isnan(float(value)):
        return None
    return round(float(value), 6)


def _levels(value: Any, count: int) -> list[float | None]:
    """A list of quantiles (None when the group had no values) as `count` floats or Nones."""
    values = list(value) if value is not None else []
    return [_float(values[i]) if i < len(values) else None for i in range(count)]


def _latency_levels(value: Any) -> dict[str, float | None]:
    """The p50, p95 and p99 latency of a breakdown row's quantile list, by field name."""
    p50, p95, p99 = _levels(value, 3)
    return {"p50_latency_ms": p50, "p95_latency_ms": p95, "p99_latency_ms": p99}


def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


# what an upload reports when the server stopped while it ran (see SqlLedger.settle_upload)
INTERRUPTED_BEFORE_COMMIT = (
    "The server stopped while this file was being imported; nothing "
    "from it was kept. Send the file again."
)
INTERRUPTED_AFTER_COMMIT = (
    "The server stopped while this file's rows were being added, before "
    "its report was finished: rows_accepted counts this file's rows in "
    "the ledger, the other counts are as last saved. Sending the file "
    "again adds any row that is missing and never counts one twice."
)
# how long a `processing` record may go unsaved before its import counts as gone
ABANDONED_AFTER = timedelta(minutes=15)


class SqlLedger:
    """The ledger over any engine that runs the statements of `queries.py`."""

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
        if not (self.keeps_rollups and self.serve_from_rollups and query.name in rollups.READS):
            return False
        if not (self._rollups_built or tenant_id in self._built_tenants):
            return False
        return (
            query.name not in rollups.WITH_PERCENTILES
            or self._rollup_requests(tenant_id) > self.exact_percentiles_up_to
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
                        self._write(self._rollup_refresh(tenant_id))
                        self._built_tenants.add(tenant_id)
        except Exception as exc:
            log.warning("ledger.rollups_build_failed", error=str(exc))

    def rows_changed(self, tenant_id: str, *, own_calls_only: bool = False) -> None:
        """Every write to a tenant's rows ends here: stored answers about them are void (those
        that leave out the platform's own calls stay when only such calls were written)."""
        if self.answers is not None:
            self.answers.changed(tenant_id, own_calls_only=own_calls_only)

    def prepare_answers(self, tenant_id: str) -> None:
        """Answer ahead of time what is asked first after new rows arrive: the usage page's
        all-time summary and every read of a chat run over the default report period (those
        leave out the platform's own calls, as a chat run's do).
        (Synchronous and slow on a large ledger: call from a background thread.)"""
        if self.answers is None:
            return
        where = analysed_rows(n.feature for n in self._names(tenant_id))
        bounds = self._period_bounds(tenant_id, ANALYSED_ROWS)
        if bounds.last_timestamp is None:
            return
        period = default_period_ending(bounds.last_timestamp)
        reads: list[Callable[[], object]] = [
            lambda: self._summary(tenant_id, None),
            lambda: self._coverage(tenant_id, period, where),
            lambda: self._summary(tenant_id, period, where),
            lambda: self._by_model_feature(tenant_id, period, where),
            lambda: self._latency_percentiles(tenant_id, period, False, where),
            lambda: self._duplicate_prompts(tenant_id, period, 0, where),
            lambda: self._shared_prefixes(tenant_id, period, where),
            *(
                lambda kind=kind: self._token_outliers(
                    tenant_id, period, kind, MIN_OUTLIER_REQUESTS, where
                )
                for kind in q.TOKEN_OUTLIERS
            ),
            lambda: self._batchable_share(tenant_id, period, where),
            lambda: self._error_retry_waste(tenant_id, period, where),
        ]
        for read in reads:
            if self._closing.is_set():
                return
            read()

    def prepare_answers_soon(self, tenant_id: str) -> threading.Thread | None:
        """`prepare_answers` in a background thread, one pass per tenant at a time (a write
        during a pass asks for one more). Returns the thread it started, if any."""
        if self.answers is None or self._closing.is_set():
            return None
        with self._preparing_lock:
            if tenant_id in self._preparing:
                self._preparing[tenant_id] = True
                return None
            self._preparing[tenant_id] = False

        def prepare() -> None:
            while not self._closing.is_set():
                try:
                    self.prepare_answers(tenant_id)
                except Exception as exc:
                    log.warning("ledger.prepare_failed", tenant_id=tenant_id, error=str(exc))
                with self._preparing_lock:
                    if not self._preparing[tenant_id]:
                        break
                    self._preparing[tenant_id] = False
            with self._preparing_lock:
                self._preparing.pop(tenant_id, None)

        return self._start_preparer(prepare)

    def prepare_recent_answers_soon(self, tenants: int) -> threading.Thread | None:
        """The answer store starts empty, so after a restart the first usage page or chat run
        of a large ledger would wait seconds for its reads: prepare them for the `tenants`
        tenants whose latest completed upload is newest, one tenant after another, in a
        background thread. Returns the thread it started, if any."""
        if self.answers is None or tenants <= 0 or self._closing.is_set():
            return None

        def prepare() -> None:
            try:
                recent = self.recent_tenants(tenants)
            except Exception as exc:
                log.warning("ledger.prepare_failed", error=str(exc))
                return
            for tenant_id in recent:
                thread = self.prepare_answers_soon(tenant_id)
                if thread is not None:
                    thread.join()

        return self._start_preparer(prepare)

    def _start_preparer(self, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, name="apex-ledger-answers", daemon=True)
        with (
            self._preparing_lock
        ):  # started under the lock: `wait_for_answers` never joins it unstarted
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

    # -- reads ------------------------------------------------------------------------------
    def _totals(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> UsageTotals:
        row = self._query(q.SUMMARY, tenant_id, period, where)[0]
        requests = as_int(row[0])
        return UsageTotals(
            requests=requests,
            cost_usd=_decimal(row[1]),
            input_tokens=as_int(row[2]),
            output_tokens=as_int(row[3]),
            cached_input_tokens=as_int(row[4]),
            reasoning_tokens=as_int(row[5]),
            errors=as_int(row[6]),
            unpriced_requests=as_int(row[7]),
            first_timestamp=_utc(row[8]) if requests else None,
            last_timestamp=_utc(row[9]) if requests else None,
            cache_write_input_tokens=as_int(row[10]),
        )

    def _by_model(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[ModelUsage]:
        return [
            ModelUsage(
                provider=r[0],
                model=r[1],
                requests=as_int(r[2]),
                cost_usd=_decimal(r[3]),
                input_tokens=as_int(r[4]),
                output_tokens=as_int(r[5]),
                cached_input_tokens=as_int(r[6]),
                reasoning_tokens=as_int(r[7]),
                errors=as_int(r[8]),
                unpriced_requests=as_int(r[9]),
                **_latency_levels(r[10]),
                cache_write_input_tokens=as_int(r[11]),
            )
            for r in self._query(q.BY_MODEL, tenant_id, period, where)
        ]

    def _by_feature(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[FeatureUsage]:
        return [
            FeatureUsage(
                feature=r[0],
                requests=as_int(r[1]),
                cost_usd=_decimal(r[2]),
                input_tokens=as_int(r[3]),
                output_tokens=as_int(r[4]),
                errors=as_int(r[5]),
                **_latency_levels(r[6]),
                unpriced_requests=as_int(r[7]),
            )
            for r in self._query(q.BY_FEATURE, tenant_id, period, where)
        ]

    def _by_tag(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[TagUsage]:
        return [
            TagUsage(
                tag=r[0],
                requests=as_int(r[1]),
                cost_usd=_decimal(r[2]),
                unpriced_requests=as_int(r[3]),
            )
            for r in self._query(q.BY_TAG, tenant_id, period, where)
        ]

    def _by_day(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[DayUsage]:
        return [
            DayUsage(
                day=_day(r[0]),
                requests=as_int(r[1]),
                cost_usd=_decimal(r[2]),
                input_tokens=as_int(r[3]),
                output_tokens=as_int(r[4]),
                errors=as_int(r[5]),
                unpriced_requests=as_int(r[6]),
            )
            for r in self._query(q.BY_DAY, tenant_id, period, where)
        ]

    def _by_day_model(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[DayModelUsage]:
        return [
            DayModelUsage(
                day=_day(r[0]),
                provider=r[1],
                model=r[2],
                requests=as_int(r[3]),
                cost_usd=_decimal(r[4]),
                unpriced_requests=as_int(r[5]),
            )
            for r in self._query(q.BY_DAY_MODEL, tenant_id, period, where)
        ]

    def _by_model_feature(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> list[ModelFeatureUsage]:
        return [
            ModelFeatureUsage(
                provider=r[0],
                model=r[1],
                feature=r[2],
                operation=r[3],
                requests=as_int(r[4]),
                cost_usd=_decimal(r[5]),
                input_tokens=as_int(r[6]),
                output_tokens=as_int(r[7]),
                cached_input_tokens=as_int(r[8]),
                reasoning_tokens=as_int(r[9]),
                errors=as_int(r[10]),
                p50_input_tokens=_levels(r[11], 1)[0],
                p50_output_tokens=_levels(r[12], 2)[0],
                p95_output_tokens=_levels(r[12], 2)[1],
                unpriced_requests=as_int(r[13]),
            )
            for r in self._query(q.BY_MODEL_FEATURE, tenant_id, period, where)
        ]

    def _summary(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> UsageSummary:
        totals = self._totals(tenant_id, period, where)
        if period is None:
            shown = TimeSpan(start=totals.first_timestamp, end=totals.last_timestamp)
        else:
            shown = TimeSpan(start=period.start, end=period.end)
        return UsageSummary(
            period=shown,
            totals=totals,
            by_model=self._by_model(tenant_id, period, where),
            by_feature=self._by_feature(tenant_id, period, where),
            by_day=self._by_day(tenant_id, period, where),
            by_day_model=self._by_day_model(tenant_id, period, where),
        )

    @staticmethod
    def _latency(provider: str, model: str, feature: str, r: Sequence[Any]) -> LatencyStats:
        p50, p95, p99 = _levels(r[1], 3)
        ttft = _levels(r[4], 2) if as_int(r[3]) else [None, None]
        return LatencyStats(
            provider=provider,
            model=model,
            feature=feature,
            requests=as_int(r[0]),
            p50_latency_ms=p50,
            p95_latency_ms=p95,
            p99_latency_ms=p99,
            max_latency_ms=_float(r[2]),
            ttft_requests=as_int(r[3]),
            p50_ttft_ms=ttft[0],
            p95_ttft_ms=ttft[1],
        )

    def _latency_percentiles(
        self,
        tenant_id: str,
        period: UsagePeriod | None,
        with_overall: bool,
        where: UsageFilter = EVERY_ROW,
    ) -> LatencyReport:
        overall_rows = (
            self._query(q.LATENCY_OVERALL, tenant_id, period, where) if with_overall else []
        )
        overall = None
        if overall_rows and as_int(overall_rows[0][0]):
            overall = self._latency("", "", "", overall_rows[0])
        groups = [
            self._latency(r[0], r[1], r[2], r[3:])
            for r in self._query(q.LATENCY, tenant_id, period, where)
        ]
        return LatencyReport(overall=overall, groups=groups)

    def _error_retry_waste(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> ErrorRetryWaste:
        errors = [
            ErrorGroup(
                provider=r[0],
                model=r[1],
                error_type=r[2],
                requests=as_int(r[3]),
                cost_usd=_decimal(r[4]),
                input_tokens=as_int(r[5]),
                output_tokens=as_int(r[6]),
            )
            for r in self._query(q.ERRORS, tenant_id, period, where)
        ]
        retries = [
            RetryGroup(
                provider=r[0],
                model=r[1],
                retries=as_int(r[2]),
                recovered=as_int(r[3]),
                cost_usd=_decimal(r[4]),
            )
            for r in self._query(q.RETRIES, tenant_id, period, where)
        ]
        return ErrorRetryWaste(
            error_requests=sum(e.requests for e in errors),
            error_cost_usd=sum((e.cost_usd for e in errors), Decimal(0)),
            retry_requests=sum(r.retries for r in retries),
            retry_cost_usd=sum((r.cost_usd for r in retries), Decimal(0)),
            retry_window_s=q.RETRY_WINDOW_S,
            errors=errors,
            retries=retries,
        )

    def _duplicate_prompts(
        self, tenant_id: str, period: UsagePeriod | None, top: int, where: UsageFilter = EVERY_ROW
    ) -> DuplicatePrompts:
        rows = self._query(q.DUPLICATES, tenant_id, period, where, limit=max(1, top))
        groups = sorted(
            (
                DuplicateGroup(
                    provider=r[1],
                    model=r[2],
                    hashed_requests=as_int(r[4]),
                    distinct_prompts=as_int(r[5]),
                    repeated_prompts=as_int(r[6]),
                    duplicate_requests=as_int(r[7]),
                    duplicate_cost_usd=_decimal(r[8]),
                )
                for r in rows
                if r[0] == "model"
            ),
            key=lambda g: (-g.duplicate_cost_usd, -g.duplicate_requests, g.provider, g.model),
        )
        top_prompts = sorted(
            (
                RepeatedPrompt(
                    prompt_hash=r[3],
                    provider=r[1],
                    model=r[2],
                    calls=as_int(r[4]),
                    cost_usd=_decimal(r[8]),
                )
                for r in rows
                if r[0] == "prompt" and top > 0
            ),
            key=lambda p: (-p.calls, -p.cost_usd, p.prompt_hash, p.provider, p.model),
        )
        return DuplicatePrompts(
            requests=self._totals(tenant_id, period, where).requests,
            hashed_requests=sum(g.hashed_requests for g in groups),
            duplicate_requests=sum(g.duplicate_requests for g in groups),
            duplicate_cost_usd=sum((g.duplicate_cost_usd for g in groups), Decimal(0)),
            groups=groups,
            top_prompts=top_prompts,
        )

    def _shared_prefixes(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> SharedPrefixes:
        totals = self._totals(tenant_id, period, where)
        groups = [
            PrefixGroup(
                provider=r[0],
                model=r[1],
                prefixes=as_int(r[2]),
                requests=as_int(r[3]),
                input_tokens=as_int(r[4]),
                cached_input_tokens=as_int(r[5]),
                repeated_prefix_tokens=as_int(r[6]),
            )
            for r in self._query(q.PREFIXES, tenant_id, period, where)
        ]
        return SharedPrefixes(
            requests=totals.requests,
            shared_requests=sum(g.requests for g in groups),
            input_tokens=totals.input_tokens,
            repeated_prefix_tokens=sum(g.repeated_prefix_tokens for g in groups),
            groups=groups,
        )

    def _token_outliers(
        self,
        tenant_id: str,
        period: UsagePeriod | None,
        kind: str,
        min_requests: int,
        where: UsageFilter = EVERY_ROW,
    ) -> list[TokenOutlierGroup]:
        if kind not in q.TOKEN_OUTLIERS:
            raise ValueError("kind must be 'input' or 'output'")
        return [
            TokenOutlierGroup(
                provider=r[0],
                model=r[1],
                feature=r[2],
                requests=as_int(r[3]),
                p50_tokens=_levels(r[4], 3)[0],
                p95_tokens=_levels(r[4], 3)[1],
                p99_tokens=_levels(r[4], 3)[2],
                max_tokens=as_int(r[5]),
                threshold=as_int(r[6]),
                outlier_requests=as_int(r[7]),
                outlier_tokens=as_int(r[8]),
                outlier_cost_usd=_decimal(r[9]),
            )
            for r in self._query(
                q.TOKEN_OUTLIERS[kind], tenant_id, period, where, min_requests=max(1, min_requests)
            )
        ]

    def _hour_of_day(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> HourOfDay:
        cells = [
            HourProfile(
                weekday=as_int(r[0]),
                hour=as_int(r[1]),
                requests=as_int(r[2]),
                cost_usd=_decimal(r[3]),
                tokens=as_int(r[4]),
            )
            for r in self._query(q.HOURLY, tenant_id, period, where)
        ]
        hours = []
        for hour in range(24):
            in_hour = [cell for cell in cells if cell.hour == hour]
            hours.append(
                HourProfile(
                    weekday=0,
                    hour=hour,
                    requests=sum(c.requests for c in in_hour),
                    cost_usd=sum((c.cost_usd for c in in_hour), Decimal(0)),
                    tokens=sum(c.tokens for c in in_hour),
                )
            )
        return HourOfDay(hours=hours, cells=cells)

    def _batchable_share(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> BatchableShare:
        totals = self._totals(tenant_id, period, where)
        groups = [
            BatchableGroup(
                provider=r[0],
                model=r[1],
                feature=r[2],
                requests=as_int(r[3]),
                cost_usd=_decimal(r[4]),
                input_tokens=as_int(r[5]),
                output_tokens=as_int(r[6]),
                tagged_requests=as_int(r[7]),
                off_hours_requests=as_int(r[8]),
            )
            for r in self._query(q.BATCHABLE, tenant_id, period, where)
        ]
        return BatchableShare(
            requests=totals.requests,
            cost_usd=totals.cost_usd,
            batchable_requests=sum(g.requests for g in groups),
            batchable_cost_usd=sum((g.cost_usd for g in groups), Decimal(0)),
            keywords=list(q.BATCH_KEYWORDS),
            groups=groups,
        )

    def _coverage(
        self, tenant_id: str, period: UsagePeriod | None, where: UsageFilter = EVERY_ROW
    ) -> ColumnCoverage:
        row = self._query(q.COVERAGE, tenant_id, period, where)[0]
        return ColumnCoverage(
            requests=as_int(row[0]),
            latency_rows=as_int(row[1]),
            ttft_rows=as_int(row[2]),
            feature_rows=as_int(row[3]),
            prompt_hash_rows=as_int(row[4]),
            prefix_hash_rows=as_int(row[5]),
            priced_rows=as_int(row[6]),
            output_token_rows=as_int(row[7]),
        )

    def _period_bounds(self, tenant_id: str, where: UsageFilter = EVERY_ROW) -> LedgerBounds:
        row = self._query(q.BOUNDS, tenant_id, None, where)[0]
        requests = as_int(row[0])
        return LedgerBounds(
            requests=requests,
            first_timestamp=_utc(row[1]) if requests else None,
            last_timestamp=_utc(row[2]) if requests else None,
        )

    def _names(self, tenant_id: str) -> list[UsageNames]:
        return [
            UsageNames(provider=r[0], model=r[1], feature=r[2], requests=as_int(r[3]))
            for r in self._query(q.NAMES, tenant_id, None)
        ]

    # -- the async surface ------------------------------------------------------------------
    # `where` narrows a read to named models, providers and features (a question's scope)
    async def summary(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> UsageSummary:
        return await self._run(self._summary, tenant_id, period, where)

    async def totals(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> UsageTotals:
        return await self._run(self._totals, tenant_id, period, where)

    async def by_model(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[ModelUsage]:
        return await asyncio.to_thread(self._by_model, tenant_id, period, where)

    async def by_feature(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[FeatureUsage]:
        return await asyncio.to_thread(self._by_feature, tenant_id, period, where)

    async def by_tag(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[TagUsage]:
        return await asyncio.to_thread(self._by_tag, tenant_id, period, where)

    async def by_day(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[DayUsage]:
        return await asyncio.to_thread(self._by_day, tenant_id, period, where)

    async def by_model_feature(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> list[ModelFeatureUsage]:
        return await asyncio.to_thread(self._by_model_feature, tenant_id, period, where)

    async def latency_percentiles(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        *,
        overall: bool = True,
        where: UsageFilter = EVERY_ROW,
    ) -> LatencyReport:
        """Per-group latency; `overall=False` skips the whole-period figures (a full pass over
        the rows) for callers that only read the groups."""
        return await self._run(self._latency_percentiles, tenant_id, period, overall, where)

    async def error_retry_waste(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> ErrorRetryWaste:
        return await self._run(self._error_retry_waste, tenant_id, period, where)

    async def duplicate_prompts(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        top: int = 10,
        *,
        where: UsageFilter = EVERY_ROW,
    ) -> DuplicatePrompts:
        return await self._run(self._duplicate_prompts, tenant_id, period, top, where)

    async def shared_prefixes(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> SharedPrefixes:
        return await self._run(self._shared_prefixes, tenant_id, period, where)

    async def token_outliers(
        self,
        tenant_id: str,
        period: UsagePeriod | None = None,
        kind: str = "output",
        min_requests: int = MIN_OUTLIER_REQUESTS,
        *,
        where: UsageFilter = EVERY_ROW,
    ) -> list[TokenOutlierGroup]:
        return await asyncio.to_thread(
            self._token_outliers, tenant_id, period, kind, min_requests, where
        )

    async def hour_of_day(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> HourOfDay:
        return await self._run(self._hour_of_day, tenant_id, period, where)

    async def batchable_share(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> BatchableShare:
        return await self._run(self._batchable_share, tenant_id, period, where)

    async def coverage(
        self, tenant_id: str, period: UsagePeriod | None = None, *, where: UsageFilter = EVERY_ROW
    ) -> ColumnCoverage:
        return await self._run(self._coverage, tenant_id, period, where)

    async def period_bounds(
        self, tenant_id: str, *, where: UsageFilter = EVERY_ROW
    ) -> LedgerBounds:
        return await self._run(self._period_bounds, tenant_id, where)

    async def names(self, tenant_id: str) -> list[UsageNames]:
        """Every (provider, model, feature) of the tenant's rows, with its row count."""
        return await self._run(self._names, tenant_id)

    async def default_period(self, tenant_id: str) -> UsagePeriod | None:
        """The 30 days that end at the caller's newest row (PROTOCOL's default report period),
        which is never one of the platform's own calls."""
        bounds = await self.period_bounds(tenant_id, where=ANALYSED_ROWS)
        if bounds.last_timestamp is None:
            return None
        return default_period_ending(bounds.last_timestamp)

    # -- writes -----------------------------------------------------------------------------
    def open_upload(
        self, tenant_id: str, upload_id: str, *, own_calls_only: bool = False
    ) -> UploadWriter:
        """Somewhere to put an upload's rows until `commit` makes them visible at once.
        `own_calls_only`: every row is one of the platform's own calls (feature `apex`)."""
        raise NotImplementedError

    _TENANT_TABLES: tuple[str, ...] = ("usage", "uploads")
    _ACCOUNT_ONLY_TABLES: tuple[str, ...] = ("price_overrides", "repricing")

    def delete_usage(self, tenant_id: str, *, whole_account: bool = False) -> int:
        """Erase the tenant's rows and upload records (and, when its account is deleted, its
        own prices and re-pricing marks too); returns how many rows there were."""
        bind = self._binder()
        tenant = f"tenant_id = {bind(tenant_id)}"
        with self.commit_lock:
            count = as_int(
                self._rows(
                    bind.statement(f"SELECT count(*) FROM {self._table('usage')} WHERE {tenant}")
                )[0][0]
            )
            extra = self._ACCOUNT_ONLY_TABLES if whole_account else ()
            self._write(
                [
                    *(
                        bind.statement(self._delete_statement(table, tenant))
                        for table in (*self._TENANT_TABLES, *extra)
                    ),
                    *self._rollup_erase(tenant_id),
                ]
            )
            self.rows_changed(tenant_id)
        return count

    def delete_uploads_like(self, tenant_id: str, prefix: str, *, keep: str) -> None:
        """Erase the rows and records of the tenant's uploads whose id starts with `prefix`,
        except upload `keep`: the upload replacing them, whose record must stay listed (and
        survive a crash) while it runs."""
        bind = self._binder()
        where = (
            f"tenant_id = {bind(tenant_id)} AND {self._STARTS_WITH}(upload_id, {bind(prefix)}) "
            f"AND upload_id <> {bind(keep)}"
        )
        with self.commit_lock:
            self._write(
                [
                    *(
                        bind.statement(self._delete_statement(table, where))
                        for table in ("usage", "uploads")
                    ),
                    *self._rollup_refresh(tenant_id),
                ]
            )
            self.rows_changed(tenant_id)

    def _delete_statement(self, table: str, where: str) -> str:
        return f"DELETE FROM {self._table(table)} WHERE {where}"

    def _delete(self, bind: Binder, table: str, where: str) -> None:
        """Delete the rows of `table` matching `where`, whose placeholders `bind` gave."""
        self._command(bind.statement(self._delete_statement(table, where)))

    def save_upload(self, status: UploadStatus) -> None:
        """Insert or replace the record of an upload (DuckDB replaces by key; ClickHouse keeps
        the newest version of each key, read with FINAL)."""
        bind = self._binder()
        self._command(
            bind.statement(
                f"{self._UPSERT} {self._table('uploads')} VALUES ({bind(status.upload_id)}, "
                f"{bind(status.tenant_id)}, {bind(status.state)}, "
                f"{bind(self._upload_document(status))}, {bind(status.created_at)}, "
                f"{bind(status.updated_at)})"
            )
        )

    def get_upload(self, tenant_id: str, upload_id: str) -> UploadStatus | None:
        bind = self._binder()
        rows = self._rows(
            bind.statement(
                self._uploads_select(bind, tenant_id) + f" AND upload_id = {bind(upload_id)}"
            )
        )
        if not rows:
            return None
        return self._unless_abandoned(UploadStatus.model_validate_json(rows[0][0]))

    def list_uploads(self, tenant_id: str, limit: int = 50) -> list[UploadStatus]:
        bind = self._binder()
        rows = self._rows(
            bind.statement(
                self._uploads_select(bind, tenant_id)
                + f" ORDER BY created_at DESC, upload_id DESC LIMIT {bind(int(limit))}"
            )
        )
        return [self._unless_abandoned(UploadStatus.model_validate_json(row[0])) for row in rows]

    def recent_tenants(self, limit: int) -> list[str]:
        """Tenants by their latest completed upload, newest first (erasing a tenant's usage
        erases its upload records, so it is not listed)."""
        bind = self._binder()
        rows = self._rows(
            bind.statement(
                f"SELECT tenant_id FROM {self._uploads_source()} WHERE state = 'completed' "
                f"GROUP BY tenant_id ORDER BY max(updated_at) DESC, tenant_id "
                f"LIMIT {bind(int(limit))}"
            )
        )
        return [row[0] for row in rows]

    def settle_interrupted_uploads(self) -> list[UploadStatus]:
        """Give a final state to every upload still `processing` (see `settle_upload`).

        Only for a ledger no other process writes to, when it opens (the embedded one, which
        opens its file alone): elsewhere such a record may belong to an import still running,
        and only `_unless_abandoned` settles it, once it has been quiet long enough."""
        rows = self._rows(
            f"SELECT document FROM {self._uploads_source()} "
            "WHERE state = 'processing' ORDER BY created_at, upload_id"
        )
        return [
            self.settle_upload(UploadStatus.model_validate_json(document)) for (document,) in rows
        ]

    def settle_upload(
        self,
        status: UploadStatus,
        *,
        before_commit: str = INTERRUPTED_BEFORE_COMMIT,
        after_commit: str = INTERRUPTED_AFTER_COMMIT,
    ) -> UploadStatus:
        """The final record of an upload whose import is gone (or failed): `failed` when none
        of its rows are in the ledger, else `completed` with the rows that are, each with its
        message. The embedded ledger commits in one statement, so there an upload added all its
        rows or none; a ClickHouse insert the server finished after its client was gone can
        have added some, and a failure after the commit (its re-pricing) leaves them all."""
        bind = self._binder()
        kept = as_int(
            self._rows(
                bind.statement(
                    f"SELECT count(*) FROM {self._table('usage')} WHERE tenant_id = "
                    f"{bind(status.tenant_id)} AND upload_id = {bind(status.upload_id)}"
                )
            )[0][0]
        )
        if kept:
            change: dict[str, object] = {
                "state": "completed",
                "rows_accepted": kept,
                "message": after_commit,
            }
        else:
            change = {"state": "failed", "message": before_commit}
        settled = status.model_copy(update={**change, "updated_at": datetime.now(UTC)})
        self.save_upload(settled)
        return settled

    def _unless_abandoned(self, status: UploadStatus) -> UploadStatus:
        """A running import saves its progress every second or two while it reads, so a
        `processing` record quiet for ABANDONED_AFTER belongs to a process that stopped (on
        ClickHouse, one of several sharing the ledger)."""
        quiet = datetime.now(UTC) - status.updated_at
        if status.state != "processing" or quiet < ABANDONED_AFTER:
            return status
        return self.settle_upload(status)

    def _uploads_select(self, bind: Binder, tenant_id: str) -> str:
        return f"SELECT document FROM {self._uploads_source()} WHERE tenant_id = {bind(tenant_id)}"

    def _uploads_source(self) -> str:
        return self._table("uploads")

    @staticmethod
    def _upload_document(status: UploadStatus) -> str:
        return json.dumps({**status.model_dump(mode="json"), "tenant_id": status.tenant_id})

    # -- price overrides --------------------------------------------------------------------
    def price_overrides(self, tenant_id: str) -> list[ModelPrice]:
        """The tenant's own prices; where a replacement left two for a model (see
        `save_price_override`), the one saved last."""
        bind = self._binder()
        rows = self._rows(
            bind.statement(
                f"SELECT provider, model, document FROM {self._table('price_overrides')} "
                f"WHERE tenant_id = {bind(tenant_id)} ORDER BY provider, model, saved_at"
            )
        )
        latest = {(provider, model): document for provider, model, document in rows}
        return [
            price_from_dict(json.loads(document), source="user") for document in latest.values()
        ]

    def save_price_override(self, tenant_id: str, price: ModelPrice) -> None:
        """Replace the tenant's price for the model: the new one is inserted first and only
        then are the earlier ones deleted, so a stop or a failure in between leaves two
        (the newer is read) rather than none, on an engine without transactions too. The new
        one is dated after the earlier ones even when this server's clock is behind the one
        that saved them."""
        document = json.dumps(price.to_dict(), default=str)
        bind = self._binder()
        scope = self._override_scope(bind, tenant_id, price.provider, price.id)
        table = self._table("price_overrides")
        with self.commit_lock:
            latest = _utc(
                self._rows(bind.statement(f"SELECT max(saved_at) FROM {table} WHERE {scope}"))[0][0]
            )
            now = datetime.now(UTC)
            if latest is not None and latest >= now:
                now = latest + timedelta(microseconds=1)
            saved_at = bind(now)
            self._command(
                bind.statement(
                    f"INSERT INTO {table} (tenant_id, provider, model, document, saved_at) "
                    f"VALUES ({bind(tenant_id)}, {bind(price.provider)}, {bind(price.id)}, "
                    f"{bind(document)}, {saved_at})"
                )
            )
            self._delete(bind, "price_overrides", f"{scope} AND saved_at < {saved_at}")

    def _override_scope(self, bind: Binder, tenant_id: str, provider: str, model: str) -> str:
        return (
            f"tenant_id = {bind(tenant_id)} AND provider = {bind(provider)} "
            f"AND model = {bind(model)}"
        )

    def delete_price_override(self, tenant_id: str, provider: str, model: str) -> bool:
        bind = self._binder()
        where = self._override_scope(bind, tenant_id, provider, model)
        found = as_int(
            self._rows(
                bind.statement(
                    f"SELECT count(*) FROM {self._table('price_overrides')} WHERE {where}"
                )
            )[0][0]
        )
        if found:
            self._delete(bind, "price_overrides", where)
        return bool(found)

    @contextmanager
    def repricing(self, tenant_id: str) -> Iterator[bool]:
        """Hold the commit lock and mark the tenant's rows as being re-priced until the block
        ends without an error; yields whether an earlier re-pricing of the tenant was cut
        short (its mark is still there), in which case the caller re-prices all the tenant's
        rows, not only those it changes.

        Re-pricing a large tenant takes seconds and runs model by model, and an override is
        saved before it: a stop or an error in between would leave rows at a price the tenant
        has replaced, for good. The mark outlives both, and `interrupted_repricing` lists it.
        """
        bind = self._binder()
        tenant = f"tenant_id = {bind(tenant_id)}"
        table = self._table("repricing")
        with self.commit_lock:
            interrupted = bool(
                self._rows(bind.statement(f"SELECT count(*) FROM {table} WHERE {tenant}"))[0][0]
            )
            self._command(
                bind.statement(
                    f"INSERT INTO {table} (tenant_id, started_at) "
                    f"VALUES ({bind(tenant_id)}, {bind(datetime.now(UTC))})"
                )
            )
            yield interrupted
            self._delete(bind, "repricing", tenant)

    def interrupted_repricing(self) -> list[str]:
        """Tenants whose re-pricing began and did not finish. Every mark counts when no other
        process can be re-pricing meanwhile (`writes_alone`, checked under the commit lock);
        otherwise only marks older than ABANDONED_AFTER (a re-pricing that may still be
        running on another server is left alone)."""
        bind = self._binder()
        with self.commit_lock:
            where = ""
            if not self.writes_alone:
                where = f" WHERE started_at < {bind(datetime.now(UTC) - ABANDONED_AFTER)}"
            rows = self._rows(
                bind.statement(
                    f"SELECT DISTINCT tenant_id FROM {self._table('repricing')}"
                    f"{where} ORDER BY tenant_id"
                )
            )
        return [row[0] for row in rows]

    def reprice(
        self,
        tenant_id: str,
        catalog: PriceCatalog,
        *,
        upload_id: str | None = None,
        since: PriceCatalog | None = None,
    ) -> int:
        """Re-price the tenant's catalog-priced and unpriced rows with `catalog`, after a user
        override changed: only those of `upload_id` when given, and only the models whose
        price differs from `since` when given. File-given costs are never touched; a row the
        new price would take to MAX_CALL_COST or more is left unpriced (`calls_over_cost_limit`
        lets a caller refuse such a price first). Returns the rows re-priced."""
        changed = 0
        with self.commit_lock:
            for provider, model, count, price in self._repriced_models(
                tenant_id, upload_id, catalog, since
            ):
                bind = self._binder()
                if price is None:
                    assignments = "cost_usd = NULL, cost_source = 'unpriced'"
                else:
                    cost = self._cost_terms(bind, price)
                    assignments = (
                        f"cost_usd = CASE WHEN {cost} < {MAX_CALL_COST} THEN CAST({cost} AS "
                        f"DECIMAL({COST_PRECISION}, {COST_SCALE})) END, cost_source = CASE WHEN "
                        f"{cost} < {MAX_CALL_COST} THEN 'catalog' ELSE 'unpriced' END"
                    )
                model_rows = f"provider = {bind(provider)} AND model = {bind(model)}"
                where = f"{self._repriced_scope(bind, tenant_id, upload_id)} AND {model_rows}"
                self._reprice_rows(
                    [
                        bind.statement(self._update_statement("usage", assignments, where)),
                        *self._rollup_refresh(tenant_id, model_rows, model_rows, None, bind.values),
                    ]
                )
                changed += count
            self.rows_changed(tenant_id)
        return changed

    def _reprice_rows(self, statements: Sequence[Statement]) -> None:
        """One model's rows at their new cost and, in the same transaction, the tenant's
        rollups of that model: one step of a re-pricing, which `repricing` guards against
        being cut short between two."""
        self._write(statements)

    def calls_over_cost_limit(
        self, tenant_id: str, catalog: PriceCatalog, *, since: PriceCatalog
    ) -> int:
        """How many of the tenant's calls re-pricing with `catalog` would take to
        MAX_CALL_COST or more (a price that high is refused rather than applied)."""
        over = 0
        for provider, model, _count, price in self._repriced_models(
            tenant_id, None, catalog, since
        ):
            if price is not None:
                bind = self._binder()
                over += as_int(
                    self._rows(
                        bind.statement(
                            f"SELECT count(*) FROM {self._table('usage')} WHERE "
                            f"{self._repriced_scope(bind, tenant_id, None)} AND provider = "
                            f"{bind(provider)} AND model = {bind(model)} AND "
                            f"{self._cost_terms(bind, price)} >= {MAX_CALL_COST}"
                        )
                    )[0][0]
                )
        return over

    @staticmethod
    def _repriced_scope(bind: Binder, tenant_id: str, upload_id: str | None) -> str:
        scope = f"tenant_id = {bind(tenant_id)} AND cost_source <> 'file'"
        if upload_id is not None:
            scope += f" AND upload_id = {bind(upload_id)}"
        return scope

    def _repriced_models(
        self,
        tenant_id: str,
        upload_id: str | None,
        catalog: PriceCatalog,
        since: PriceCatalog | None,
    ) -> list[tuple[str, str, int, ModelPrice | None]]:
        """(provider, model, rows, new price) of the models of the re-priced rows whose price
        in `catalog` differs from the one in `since` (all of them without `since`)."""
        bind = self._binder()
        rows = self._rows(
            bind.statement(
                f"SELECT provider, model, count(*) FROM {self._table('usage')} "
                f"WHERE {self._repriced_scope(bind, tenant_id, upload_id)} "
                "GROUP BY provider, model"
            )
        )
        changed = []
        for provider, model, count in rows:
            price = catalog.resolve(model, provider)
            if since is None or since.resolve(model, provider) != price:
                changed.append((provider, model, as_int(count), price))
        return changed

    def unpriced_rows(self, tenant_id: str, upload_id: str) -> dict[tuple[str, str], int]:
        """Rows of one upload left without a price, by (provider, model)."""
        bind = self._binder()
        rows = self._rows(
            bind.statement(
                f"SELECT provider, model, count(*) FROM {self._table('usage')} WHERE "
                f"tenant_id = {bind(tenant_id)} AND upload_id = {bind(upload_id)} AND "
                "cost_source = 'unpriced' GROUP BY provider, model"
            )
        )
        return {(provider, model): as_int(count) for provider, model, count in rows}

    @staticmethod
    def _cost_terms(bind: Binder, price: ModelPrice) -> str:
        """A row's cost at `price`, exact, in the price band of the row's input size: token
        counts (at most 10^15) times prices per token (at most 1, see MAX_PRICE_PER_MILLION)
        fit 38 digits with 18 decimals."""
        million = Decimal(1_000_000)

        def terms(band: Rates) -> str:
            parts = (
                ("input_tokens - cached_input_tokens - cache_write_input_tokens", band.input),
                ("cached_input_tokens", band.cached_input),
                ("cache_write_input_tokens", band.cache_write),
                ("output_tokens - reasoning_tokens", band.output),
                ("reasoning_tokens", band.reasoning),
            )
            return (
                "("
                + " + ".join(
                    f"CAST({tokens} AS DECIMAL(18, 0)) * CAST({bind(per_million / million)} "
                    "AS DECIMAL(38, 18))"
                    for tokens, per_million in parts
                )
                + ")"
            )

        base, *tiers = price.bands()
        if not tiers:
            return terms(base)
        cases = " ".join(
            f"WHEN input_tokens >= {bind(int(band.min_input))} THEN {terms(band)}"
            for band in reversed(tiers)
        )
        return f"(CASE {cases} ELSE {terms(base)} END)"
