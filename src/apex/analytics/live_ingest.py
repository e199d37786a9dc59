"""Live usage from the OTLP receiver: the spans of many small exports become few, large commits.

Each export's rows wait in a bounded queue. A normalizing thread takes everything queued at
once and normalizes it per tenant in one pass (the normalizer costs about 30 ms of CPU a call
whatever its size, DuckDB planning its statement, so it is paid once a pass, not once an
export), then answers every export with the spans it refused: an export is answered once its
rows are normalized, so its partial success is exact. The good rows join the tenant's filling
batch; a committing thread commits a batch when it is `commit_interval_s` old or `commit_rows`
long, through the importer's commit path (the ledger drops the row keys the tenant has; the
overrides are checked again), after dropping repeats within the batch itself (an SDK retry
arriving before its first copy is committed). So a row is visible about `commit_interval_s`
after its export was answered, and a slow commit never holds an answer.

Pressure never grows a queue: rows waiting (queued or normalized, not committed) are capped at
`max_pending_rows`; past it an export is refused with 429, and with 503 while commits fail (the
rows kept are retried every `commit_interval_s`). Both carry `Retry-After`.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from apex.analytics.importers.base import RawBatch
from apex.analytics.ingest import UsageImporter
from apex.analytics.normalize import LINE, MAX_REPORTED_ERRORS, NormalizedBatch, Normalizer
from apex.analytics.pricing import ModelPrice
from apex.config.logging import get_logger
from apex.errors import RateLimited, ServiceUnavailable
from apex.ids import new_id

log = get_logger(__name__)

LIVE_PREFIX = "otlp_"
RETRY_AFTER_S = 1
# normalizers kept between passes (one per recent tenant, each a small in-memory DuckDB)
KEPT_NORMALIZERS = 16


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    """What one export's spans became: rows kept, spans refused and why (first few)."""

    accepted: int
    rejected: int
    messages: tuple[str, ...] = ()


@dataclass(slots=True)
class _Export:
    tenant_id: str
    batch: RawBatch
    done: Future[ExportOutcome] = field(default_factory=Future)


@dataclass(slots=True)
class _Pending:
    """A tenant's normalized rows waiting for their commit, all under one upload id."""

    upload_id: str
    priced_with: list[ModelPrice]
    since: float
    tables: list[pa.Table] = field(default_factory=list)
    rows: int = 0


class LiveIngest:
    """The per-process batcher between the OTLP receiver and the ledger: one thread
    normalizes, another commits, so a slow commit never holds an export's answer."""

    def __init__(
        self,
        importer: UsageImporter,
        *,
        commit_interval_s: float = 0.5,
        commit_rows: int = 100_000,
        max_pending_rows: int = 200_000,
    ) -> None:
        self._importer = importer
        self._interval = commit_interval_s
        self._commit_rows = commit_rows
        self._max_pending = max_pending_rows
        self._changed = threading.Condition()
        self._queue: list[_Export] = []
        self._pending: dict[str, _Pending] = {}  # filling, one per tenant
        self._ready: list[tuple[str, _Pending]] = []  # closed early (their overrides changed)
        self._retry: list[tuple[str, _Pending]] = []  # failed commits (the committer's own)
        self._pending_rows = 0  # queued and normalized rows not committed yet
        self._failing = False
        self._stopping = False
        self._normalized_all = False
        self._normalizers: dict[str, tuple[list[ModelPrice], Normalizer]] = {}
        self._threads = [
            threading.Thread(target=target, name=name, daemon=True)
            for target, name in (
                (self._normalize_loop, "apex-live-normalize"),
                (self._commit_loop, "apex-live-commit"),
            )
        ]
        for thread in self._threads:
            thread.start()

    def refuse_if_full(self, rows: int = 0) -> None:
        """Raise 429 when `rows` more would pass the cap (an export alone always fits), 503
        while commits fail or the server stops."""
        if self._failing or self._stopping:
            raise _unavailable(
                "Usage cannot be saved right now; send this batch again.", "ledger_unavailable"
            )
        if self._pending_rows and self._pending_rows + rows > self._max_pending:
            raise RateLimited(
                "The server is busy saving earlier spans; send this batch again.",
                retry_after_s=RETRY_AFTER_S,
                code="ingest_busy",
            )

    def submit(self, tenant_id: str, batch: RawBatch) -> Future[ExportOutcome]:
        """Queue one export's rows; the future is answered once they are normalized."""
        export = _Export(tenant_id, batch)
        rows = batch.table.num_rows
        if rows == 0:
            export.done.set_result(
                ExportOutcome(0, batch.rejected, tuple(e.message for e in batch.errors))
            )
            return export.done
        with self._changed:
            self.refuse_if_full(rows)
            self._queue.append(export)
            self._pending_rows += rows
            self._changed.notify_all()
        return export.done

    def close(self, timeout: float = 30.0) -> None:
        """Normalize what is queued, commit every pending row, then stop."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for _overrides, normalizer in self._normalizers.values():
            normalizer.close()
        self._normalizers.clear()

    # -- normalizing ----------------------------------------------------------------------
    def _normalize_loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._stopping)
                exports, self._queue = self._queue, []
                if not exports:
                    self._normalized_all = True
                    self._changed.notify_all()
                    return
            by_tenant: dict[str, list[_Export]] = {}
            for export in exports:
                by_tenant.setdefault(export.tenant_id, []).append(export)
            for tenant_id, group in by_tenant.items():
                try:
                    self._normalize_tenant(tenant_id, group)
                except Exception as exc:
                    log.exception("live_ingest.normalize_failed", tenant_id=tenant_id)
                    for export in group:
                        if not export.done.done():
                            self._release(export.batch.table.num_rows)
                            export.done.set_exception(
                                _unavailable(
                                    "These spans could not be read into usage rows just now "
                                    "(the server logged why); send the batch again.",
                                    "ingest_failed",
                                    exc,
                                )
                            )

    def _normalizer(self, tenant_id: str) -> tuple[Normalizer, list[ModelPrice]]:
        """The tenant's normalizer, made anew when its price overrides have changed."""
        overrides = self._importer.ledger.price_overrides(tenant_id)
        kept = self._normalizers.pop(tenant_id, None)
        if kept is not None and kept[0] != overrides:
            kept[1].close()
            kept = None
        if kept is None:
            resolver = self._importer.catalog.with_overrides(overrides).resolver()
            kept = (
                overrides,
                Normalizer(resolver, threads=1, memory_limit_mb=self._importer.memory_limit_mb),
            )
        self._normalizers[tenant_id] = kept
        while len(self._normalizers) > KEPT_NORMALIZERS:
            oldest = next(iter(self._normalizers))
            self._normalizers.pop(oldest)[1].close()
        return kept[1], overrides

    def _normalize_tenant(self, tenant_id: str, group: list[_Export]) -> None:
        normalizer, overrides = self._normalizer(tenant_id)
        tables, bounds, start = [], [], 1
        for export in group:
            rows = export.batch.table.num_rows
            tables.append(_numbered(export.batch.table, start))
            bounds.append((start, start + rows))
            start += rows
        # one chunk per column: the normalizer's per-chunk work would otherwise be paid per export
        raw = pa.concat_tables(tables, promote_options="default").combine_chunks()
        batch = normalizer.normalize(raw, tenant_id=tenant_id, upload_id=LIVE_PREFIX)
        refused = self._refused_lines(batch, group, tenant_id)
        self._add_pending(tenant_id, batch.rows, overrides, refused=batch.rejected)
        for export, (low, high) in zip(group, bounds, strict=True):
            mine = [message for line, message in refused if low <= line < high]
            given = export.batch
            export.done.set_result(
                ExportOutcome(
                    accepted=high - low - len(mine),
                    rejected=given.rejected + len(mine),
                    messages=tuple([e.message for e in given.errors] + mine)[:MAX_REPORTED_ERRORS],
                )
            )

    def _refused_lines(
        self, batch: NormalizedBatch, group: list[_Export], tenant_id: str
    ) -> list[tuple[int, str]]:
        """(line, message) of every refused row. The normalizer describes the first
        MAX_REPORTED_ERRORS; past that, each export is normalized again on its own to count
        its refusals (slow, and only for exports that send that many bad spans)."""
        if batch.rejected <= len(batch.errors):
            return [(e.line, e.message) for e in batch.errors]
        normalizer, _ = self._normalizer(tenant_id)
        refused: list[tuple[int, str]] = []
        start = 1
        for export in group:
            rows = export.batch.table.num_rows
            alone = normalizer.normalize(
                _numbered(export.batch.table, start), tenant_id=tenant_id, upload_id=LIVE_PREFIX
            )
            described = [(e.line, e.message) for e in alone.errors]
            missing = alone.rejected - len(described)
            refused += described + ([(start, described[-1][1])] * missing if missing else [])
            start += rows
        return refused

    def _add_pending(
        self, tenant_id: str, rows: pa.Table, overrides: list[ModelPrice], *, refused: int
    ) -> None:
        """Rows join the tenant's filling batch, under its upload id; a batch priced with
        other overrides is closed first and committed on its own."""
        with self._changed:
            self._pending_rows -= refused
            if not rows.num_rows:
                return
            pending = self._pending.get(tenant_id)
            if pending is not None and pending.priced_with != overrides:
                self._ready.append((tenant_id, self._pending.pop(tenant_id)))
                pending = None
            if pending is None:
                pending = _Pending(LIVE_PREFIX + new_id(), overrides, time.monotonic())
                self._pending[tenant_id] = pending
            column = rows.column_names.index("upload_id")
            pending.tables.append(
                rows.set_column(
                    column, "upload_id", pa.repeat(pa.scalar(pending.upload_id), rows.num_rows)
                )
            )
            pending.rows += rows.num_rows
            self._changed.notify_all()

    def _release(self, rows: int) -> None:
        with self._changed:
            self._pending_rows -= rows

    # -- committing -----------------------------------------------------------------------
    def _commit_loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(self._commit_wanted, timeout=self._wait_s())
                final = self._normalized_all
                now = time.monotonic()
                due, self._ready = self._ready, []
                for tenant_id, pending in list(self._pending.items()):
                    if (
                        final
                        or pending.rows >= self._commit_rows
                        or now - pending.since >= self._interval
                    ):
                        due.append((tenant_id, self._pending.pop(tenant_id)))
            retry, self._retry = self._retry, []
            for tenant_id, pending in retry + due:
                self._commit(tenant_id, pending)
            if final:
                if self._retry:
                    log.error(
                        "live_ingest.rows_lost_at_stop", rows=sum(p.rows for _t, p in self._retry)
                    )
                return

    def _commit_wanted(self) -> bool:
        return (
            self._normalized_all
            or bool(self._ready)
            or any(p.rows >= self._commit_rows for p in self._pending.values())
        )

    def _wait_s(self) -> float:
        if not self._pending:
            return self._interval
        oldest = min(p.since for p in self._pending.values())
        return max(0.0, oldest + self._interval - time.monotonic())

    def _commit(self, tenant_id: str, pending: _Pending) -> None:
        rows = _first_of_each_key(pa.concat_tables(pending.tables))
        try:
            inserted, duplicates = self._importer.commit_rows(
                tenant_id, pending.upload_id, rows, pending.priced_with
            )
        except Exception as exc:
            log.error(
                "live_ingest.commit_failed", tenant_id=tenant_id, rows=pending.rows, error=str(exc)
            )
            self._failing = True
            pending.tables = [rows]
            self._retry.append((tenant_id, pending))
            return
        self._failing = False
        self._release(pending.rows)
        duplicates += pending.rows - rows.num_rows
        log.info("live_ingest.committed", tenant_id=tenant_id, rows=inserted, duplicates=duplicates)
        if inserted:
            self._importer.rows_committed(tenant_id)


def _unavailable(message: str, code: str, cause: Exception | None = None) -> ServiceUnavailable:
    """A 503 the exporter retries after RETRY_AFTER_S."""
    error = ServiceUnavailable(message, code=code, details={"retry_after_s": RETRY_AFTER_S})
    error.retry_after_s = RETRY_AFTER_S
    error.__cause__ = cause
    return error


def _numbered(table: pa.Table, start: int) -> pa.Table:
    """The rows numbered from `start` on (a line per row across the exports of one pass)."""
    return table.set_column(
        table.column_names.index(LINE),
        LINE,
        pa.array(np.arange(start, start + table.num_rows, dtype=np.int64)),
    )


def _first_of_each_key(rows: pa.Table) -> pa.Table:
    """The rows with a row key not seen before in `rows` (the same span sent twice)."""
    keys = rows.column("row_key").to_numpy()
    _unique, first = np.unique(keys, return_index=True)
    if len(first) == rows.num_rows:
        return rows
    return rows.take(pa.array(np.sort(first)))
