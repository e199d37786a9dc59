"""Uploads and demo loads: read, normalize, stage, commit, and report as it goes.

One import runs in one worker thread. Reading (file parsing) runs one batch ahead of
normalizing in a second thread, so the two overlap; each batch is staged in the ledger and only
the final commit makes the upload's rows visible, minus the rows the tenant already had.
Progress is published to `UsageImporter.progress` and saved in the ledger as the file is read,
so `GET /api/usage/uploads/{id}` can report on a large upload from any process.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from apex.analytics.demo import DemoWorkload
from apex.analytics.filters import OWN_CALLS_FEATURE
from apex.analytics.importers.base import UnreadableFile
from apex.analytics.importers.detect import read_batches
from apex.analytics.ledger import SqlLedger
from apex.analytics.normalize import (
    LINE,
    MAX_REPORTED_ERRORS,
    NormalizedBatch,
    Normalizer,
    RejectedRow,
)
from apex.analytics.pricing import ModelPrice, PriceCatalog
from apex.analytics.results import TimeSpan
from apex.analytics.schema import MAX_CALL_COST
from apex.analytics.statement import naive_utc
from apex.analytics.upload_records import UploadWriter
from apex.analytics.uploads import RowProblem, UnpricedModel, UploadStatus
from apex.errors import BadRequest
from apex.ids import new_id

BATCH_ROWS = 150_000
PROGRESS_EVERY_S = 1.0
DEMO_PREFIX = "demo_"
# what an upload that stopped on the server's side (a full disk, say) reports; the cause is logged
SERVER_FAILURE = (
    "The import stopped on a server error and nothing from this file was kept; try again later."
)
SERVER_FAILURE_AFTER_COMMIT = (
    "The import stopped on a server error after this file's rows were added: rows_accepted "
    "counts them, the other counts are as last saved. Sending the file again adds any row that "
    "is missing and never counts one twice."
)
CALLS_PREFIX = "calls_"
_CALL_TYPES: tuple[tuple[str, pa.DataType], ...] = (
    (LINE, pa.int64()),
    ("timestamp", pa.timestamp("us")),
    ("provider", pa.string()),
    ("model", pa.string()),
    ("operation", pa.string()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("cached_input_tokens", pa.int64()),
    ("cache_write_input_tokens", pa.int64()),
    ("reasoning_tokens", pa.int64()),
    ("latency_ms", pa.float64()),
    ("ttft_ms", pa.float64()),
    ("status", pa.string()),
    ("error_type", pa.string()),
    ("feature", pa.string()),
    ("tags", pa.list_(pa.string())),
    ("end_user", pa.string()),
    ("prompt_hash", pa.string()),
    ("prefix_hash", pa.string()),
    ("prefix_tokens", pa.int64()),
    ("request_id", pa.string()),
)
_CALL_DEFAULTS: dict[str, Any] = {
    "provider": "",
    "model": "",
    "operation": "chat",
    "input_tokens": 0,
    "output_tokens": 0,
    "cached_input_tokens": 0,
    "cache_write_input_tokens": 0,
    "reasoning_tokens": 0,
    "latency_ms": None,
    "ttft_ms": None,
    "status": "ok",
    "error_type": "",
    "feature": "",
    "tags": [],
    "end_user": "",
    "prompt_hash": "",
    "prefix_hash": "",
    "prefix_tokens": 0,
    "request_id": "",
}
ItemT = TypeVar("ItemT")


def _prefetch(items: Iterator[ItemT], depth: int = 1) -> Iterator[ItemT]:
    """Iterate `items` in a helper thread, `depth` items ahead (exceptions come through).

    The helper starts on an item only when fewer than `depth` are waiting, so at most
    `depth` items exist besides the one the caller holds: batches are large, memory bounded.
    """
    buffer: queue.Queue[tuple[str, object]] = queue.Queue()
    room = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            iterator = iter(items)
            while True:
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                buffer.put(("item", item))
            buffer.put(("end", None))
        except BaseException as exc:
            buffer.put(("error", exc))

    worker = threading.Thread(target=produce, name="apex-import-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            room.release()
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)


def _release_reading_memory(normalizer: Normalizer) -> None:
    """Hand what reading and normalizing held back to the system before the commit, which
    needs the ledger's own memory: the normalizer's DuckDB (closing it twice is harmless) and
    the Arrow buffers freed since, which the allocator otherwise keeps for reuse. Peak memory
    is then the larger of the two phases, not their sum."""
    normalizer.close()
    pa.default_memory_pool().release_unused()


def _now() -> datetime:
    return datetime.now(UTC)


class _Tally:
    """What one upload has seen so far."""

    def __init__(self, status: UploadStatus) -> None:
        self.status = status
        self.errors: list[RejectedRow] = []
        self.unpriced: dict[tuple[str, str], int] = {}
        self.first: datetime | None = None
        self.last: datetime | None = None

    def add_errors(self, errors: list[RejectedRow]) -> None:
        if errors:
            self.errors = sorted(self.errors + errors, key=lambda e: e.line)[:MAX_REPORTED_ERRORS]

    def add_rows(self, batch: NormalizedBatch) -> None:
        rows = batch.rows
        if rows.num_rows:
            bounds = pc.min_max(rows.column("timestamp")).as_py()
            low = bounds["min"].replace(tzinfo=UTC)
            high = bounds["max"].replace(tzinfo=UTC)
            self.first = low if self.first is None else min(self.first, low)
            self.last = high if self.last is None else max(self.last, high)
        for key, count in batch.unpriced.items():
            self.unpriced[key] = self.unpriced.get(key, 0) + count
        self.add_errors(batch.errors)

    def snapshot(self, **changes: object) -> UploadStatus:
        self.status = self.status.model_copy(
            update={
                "errors": [RowProblem(line=e.line, message=e.message) for e in self.errors],
                "unpriced": [
                    UnpricedModel(provider=p, model=m, rows=n)
                    for (p, m), n in sorted(self.unpriced.items())
                ],
                "period": TimeSpan(start=self.first, end=self.last),
                "updated_at": _now(),
                **changes,
            }
        )
        return self.status


class UsageImporter:
    """Turns files and demo workloads into ledger rows for one tenant at a time."""

    def __init__(
        self,
        ledger: SqlLedger,
        catalog: PriceCatalog,
        *,
        batch_rows: int = BATCH_ROWS,
        memory_limit_mb: int = 160,
    ) -> None:
        self.ledger = ledger
        self.catalog = catalog
        self.batch_rows = batch_rows
        self.memory_limit_mb = memory_limit_mb
        self.progress: dict[str, UploadStatus] = {}
        self._commit_listeners: list[Callable[[str], None]] = []

    def on_rows_committed(self, listener: Callable[[str], None]) -> None:
        """Call `listener(tenant_id)` after each commit that added rows to a tenant (budgets
        and alerts are evaluated then). Called from the committing thread: keep it quick."""
        self._commit_listeners.append(listener)

    def rows_committed(self, tenant_id: str) -> None:
        """The one hook every writer of a tenant's usage rows calls after its commit (uploads,
        demo loads, live ingestion)."""
        for listener in self._commit_listeners:
            listener(tenant_id)

    def catalog_for(self, tenant_id: str) -> PriceCatalog:
        """The catalog with the tenant's own price overrides on top."""
        return self.catalog.with_overrides(self.ledger.price_overrides(tenant_id))

    def set_price(self, tenant_id: str, price: ModelPrice) -> int:
        """Save the tenant's own price for a model and re-price the tenant's rows it changes
        (aliases of the model included); returns how many. Both in one hold of the commit lock,
        so no upload commits in between (see `_commit`), and under a re-pricing mark, so a
        stop midway is finished later (`finish_interrupted_repricing`)."""
        with self.ledger.commit_lock:
            before = self.catalog_for(tenant_id)
            return self._change_prices(
                tenant_id,
                before,
                before.with_overrides([price]),
                "At this price",
                lambda: self.ledger.save_price_override(tenant_id, price),
            )

    def remove_price(self, tenant_id: str, provider: str, model: str) -> bool:
        """Drop the tenant's own price for a model and re-price its rows with the catalog;
        False when there was none."""
        with self.ledger.commit_lock:
            overrides = self.ledger.price_overrides(tenant_id)
            kept = [o for o in overrides if (o.provider, o.id) != (provider, model)]
            if len(kept) == len(overrides):
                return False
            self._change_prices(
                tenant_id,
                self.catalog.with_overrides(overrides),
                self.catalog.with_overrides(kept),
                "At the catalog's price",
                lambda: self.ledger.delete_price_override(tenant_id, provider, model),
            )
            return True

    def _change_prices(
        self,
        tenant_id: str,
        before: PriceCatalog,
        after: PriceCatalog,
        at: str,
        change: Callable[[], object],
    ) -> int:
        """Refuse a change that would take a call past the ledger's ceiling; else make it and
        re-price the rows whose price it changes (all the tenant's rows when an earlier
        re-pricing was cut short), under a re-pricing mark. Returns the rows re-priced."""
        self._refuse_calls_over_cost_limit(tenant_id, after, before, at)
        with self.ledger.repricing(tenant_id) as interrupted:
            change()
            return self.ledger.reprice(tenant_id, after, since=None if interrupted else before)

    def finish_interrupted_repricing(self) -> list[str]:
        """Re-price all the rows of every tenant whose re-pricing a stop or an error cut short
        (`SqlLedger.repricing`), with the overrides as saved; returns those tenants. Run when
        the server starts: slow on a large tenant (seconds at 10M rows), and rarely needed."""
        tenants = self.ledger.interrupted_repricing()
        for tenant_id in tenants:
            with self.ledger.repricing(tenant_id):
                self.ledger.reprice(tenant_id, self.catalog_for(tenant_id))
        return tenants

    def _refuse_calls_over_cost_limit(
        self, tenant_id: str, after: PriceCatalog, before: PriceCatalog, at: str
    ) -> None:
        over = self.ledger.calls_over_cost_limit(tenant_id, after, since=before)
        if over:
            raise BadRequest(
                f"{at}, {over:,} of your calls would cost ${MAX_CALL_COST:,} or more each, more "
                "than the ledger holds for one call; nothing was changed.",
                code="price_too_high",
                details={"calls": over, "max_call_cost_usd": MAX_CALL_COST},
            )

    def _normalizer(self, tenant_id: str, **options: Any) -> tuple[Normalizer, list[ModelPrice]]:
        """A normalizer pricing with the tenant's overrides as they are now, and those
        overrides (`_commit` checks them again)."""
        overrides = self.ledger.price_overrides(tenant_id)
        resolver = self.catalog.with_overrides(overrides).resolver()
        return Normalizer(resolver, memory_limit_mb=self.memory_limit_mb, **options), overrides

    def _commit(
        self,
        writer: UploadWriter,
        tenant_id: str,
        upload_id: str,
        priced_with: list[ModelPrice],
        *,
        replaces: str | None = None,
    ) -> tuple[int, int, bool]:
        """Commit an upload's staged rows, first erasing the tenant's other uploads whose id
        starts with `replaces`; returns rows inserted, duplicates, and whether its rows were
        re-priced.

        The rows were priced when read, with the overrides of that moment. An override saved
        since re-priced only the rows already in the ledger, so in the same hold of the commit
        lock this checks the overrides again and, when they changed, re-prices the upload's
        rows under a re-pricing mark: no row keeps a price its tenant has replaced, even when
        the server stops in between. (Within the lock no override can change, so checking
        before the insert is checking after it.)"""
        with self.ledger.commit_lock:
            if replaces is not None:
                self.ledger.delete_uploads_like(tenant_id, replaces, keep=upload_id)
            overrides = self.ledger.price_overrides(tenant_id)
            if overrides == priced_with:
                inserted, duplicates = writer.commit()
                return inserted, duplicates, False
            with self.ledger.repricing(tenant_id) as interrupted:
                inserted, duplicates = writer.commit()
                if inserted or interrupted:
                    self.ledger.reprice(
                        tenant_id,
                        self.catalog.with_overrides(overrides),
                        upload_id=None if interrupted else upload_id,
                    )
            return inserted, duplicates, bool(inserted)

    def status(self, tenant_id: str, upload_id: str) -> UploadStatus | None:
        """Live progress when the upload runs in this process, else the saved record."""
        live = self.progress.get(upload_id)
        if live is not None and live.tenant_id == tenant_id:
            return live
        return self.ledger.get_upload(tenant_id, upload_id)

    def start(
        self,
        tenant_id: str,
        *,
        filename: str,
        fmt: str,
        bytes_total: int | None = None,
        upload_id: str | None = None,
    ) -> UploadStatus:
        now = _now()
        status = UploadStatus(
            upload_id=upload_id or new_id(),
            tenant_id=tenant_id,
            filename=filename,
            format=fmt,
            state="processing",
            bytes_total=bytes_total,
            created_at=now,
            updated_at=now,
        )
        self._publish(status)
        return status

    def _publish(self, status: UploadStatus, *, save: bool = True) -> None:
        self.progress[status.upload_id] = status
        if save:
            self.ledger.save_upload(status)

    def import_stream(
        self, status: UploadStatus, stream: BinaryIO, fmt: str | None = None
    ) -> UploadStatus:
        """Read a whole file (synchronously: call from a worker thread). However the import
        ends, its record leaves `processing`: a refused file says why, anything else is
        settled as a server failure."""
        try:
            chosen, batches = read_batches(stream, fmt, batch_rows=self.batch_rows)
        except UnreadableFile as exc:
            self._fail(status, exc.message)
            raise
        except BaseException:
            self._fail_on_server_error(status)
            raise
        status = status.model_copy(update={"format": chosen})
        normalizer, overrides = self._normalizer(status.tenant_id)
        try:
            return self._consume(
                status,
                _prefetch(batches),
                normalizer,
                overrides,
                lambda n, raw: n.normalize(
                    raw, tenant_id=status.tenant_id, upload_id=status.upload_id
                ),
            )
        except UnreadableFile as exc:
            self._fail(status, exc.message)
            raise
        except BaseException:
            self._fail_on_server_error(status)
            raise
        finally:
            normalizer.close()

    def import_demo(self, status: UploadStatus, workload: DemoWorkload) -> UploadStatus:
        """Load a generated workload (synchronously). Its commit replaces the earlier demo
        uploads, so they stay in place while it runs and if it fails."""
        normalizer, overrides = self._normalizer(status.tenant_id)
        try:
            return self._consume(
                status,
                _prefetch(workload.chunks()),
                normalizer,
                overrides,
                lambda n, typed: n.finish_typed(
                    typed, tenant_id=status.tenant_id, upload_id=status.upload_id
                ),
                replaces=DEMO_PREFIX,
            )
        except Exception:
            self._fail_on_server_error(status)
            raise
        finally:
            normalizer.close()

    def _consume(
        self,
        status: UploadStatus,
        batches: Iterator[object],
        normalizer: Normalizer,
        overrides: list[ModelPrice],
        normalize: Callable[[Normalizer, pa.Table], NormalizedBatch],
        *,
        replaces: str | None = None,
    ) -> UploadStatus:
        tally = _Tally(status)
        given = structural = invalid = skipped = 0
        last_saved = time.monotonic()
        writer = self.ledger.open_upload(status.tenant_id, status.upload_id)
        try:
            for item in batches:
                table = getattr(item, "table", item)
                assert isinstance(table, pa.Table)
                structural += getattr(item, "rejected", 0)
                skipped += getattr(item, "skipped", 0)
                tally.add_errors(getattr(item, "errors", []))
                if table.num_rows:
                    batch = normalize(normalizer, table)
                    invalid += batch.rejected
                    given += table.num_rows
                    tally.add_rows(batch)
                    writer.stage(batch.rows)
                save = time.monotonic() - last_saved >= PROGRESS_EVERY_S
                self._publish(
                    tally.snapshot(
                        rows_processed=given + structural + skipped,
                        rows_rejected=structural + invalid,
                        rows_skipped=skipped,
                        bytes_read=getattr(item, "bytes_read", tally.status.bytes_read),
                    ),
                    save=save,
                )
                if save:
                    last_saved = time.monotonic()
            _release_reading_memory(normalizer)
            inserted, duplicates, repriced = self._commit(
                writer, status.tenant_id, status.upload_id, overrides, replaces=replaces
            )
        except BaseException:
            writer.discard()
            raise
        if repriced:
            tally.unpriced = self.ledger.unpriced_rows(status.tenant_id, status.upload_id)
        final = tally.snapshot(
            state="completed",
            rows_accepted=inserted,
            rows_duplicate=duplicates,
            rows_rejected=structural + invalid,
            rows_skipped=skipped,
            rows_processed=given + structural + skipped,
        )
        self._publish(final)
        if inserted:
            self.ledger.prepare_answers_soon(status.tenant_id)
            self.rows_committed(status.tenant_id)
        return final

    def _fail_on_server_error(self, status: UploadStatus) -> None:
        """An import that raised may have committed first (its re-pricing failed after the
        insert): then its record says the rows are in, never that nothing was kept."""
        try:
            settled = self.ledger.settle_upload(
                self.progress.get(status.upload_id, status),
                before_commit=SERVER_FAILURE,
                after_commit=SERVER_FAILURE_AFTER_COMMIT,
            )
        except Exception:
            self._fail(status, SERVER_FAILURE)
            return
        self._publish(settled, save=False)

    def _fail(self, status: UploadStatus, message: str) -> None:
        self._publish(
            status.model_copy(update={"state": "failed", "message": message, "updated_at": _now()})
        )

    async def upload(
        self,
        tenant_id: str,
        stream: BinaryIO,
        *,
        filename: str,
        fmt: str | None = None,
        bytes_total: int | None = None,
        upload_id: str | None = None,
    ) -> UploadStatus:
        status = await asyncio.to_thread(
            self.start,
            tenant_id,
            filename=filename,
            fmt=fmt or "auto",
            bytes_total=bytes_total,
            upload_id=upload_id,
        )
        return await asyncio.to_thread(self.import_stream, status, stream, fmt)

    def record_calls(self, tenant_id: str, calls: Sequence[Mapping[str, Any]]) -> int:
        """Add a few typed calls (the platform's own language-model calls) to the tenant's rows,
        priced from the catalog like any other row. Each call needs `timestamp`, `provider`,
        `model`, `operation`, token counts, `status`; the rest defaults to empty. Returns the rows
        added (synchronous: call from a worker thread)."""
        if not calls:
            return 0
        columns = {
            name: [call.get(name, default) for call in calls]
            for name, default in _CALL_DEFAULTS.items()
        }
        columns["timestamp"] = [naive_utc(call["timestamp"]) for call in calls]
        columns[LINE] = list(range(1, len(calls) + 1))
        table = pa.table({name: pa.array(columns[name], type_) for name, type_ in _CALL_TYPES})
        normalizer, overrides = self._normalizer(tenant_id, threads=1)
        own_calls_only = all(call.get("feature") == OWN_CALLS_FEATURE for call in calls)
        # one id for the writer and its rows: ClickHouse commits the staged rows of that id
        upload_id = CALLS_PREFIX + new_id()
        try:
            rows = normalizer.finish_typed(table, tenant_id=tenant_id, upload_id=upload_id).rows
        finally:
            normalizer.close()
        inserted, _duplicates = self.commit_rows(
            tenant_id, upload_id, rows, overrides, own_calls_only=own_calls_only
        )
        return inserted

    def commit_rows(
        self,
        tenant_id: str,
        upload_id: str,
        rows: pa.Table,
        priced_with: list[ModelPrice],
        *,
        own_calls_only: bool = False,
    ) -> tuple[int, int]:
        """Commit finished rows (normalized with `upload_id`, priced with the overrides
        `priced_with`) the way an upload commits: minus the rows the tenant has, re-priced if
        the overrides changed since. Returns rows inserted and duplicates (synchronous)."""
        writer = self.ledger.open_upload(tenant_id, upload_id, own_calls_only=own_calls_only)
        try:
            writer.stage(rows)
            inserted, duplicates, _repriced = self._commit(
                writer, tenant_id, upload_id, priced_with
            )
        except BaseException:
            writer.discard()
            raise
        return inserted, duplicates

    async def load_demo(
        self, tenant_id: str, *, rows: int, seed: int, end: datetime | None = None
    ) -> UploadStatus:
        status = await asyncio.to_thread(
            self.start,
            tenant_id,
            filename=f"demo-seed-{seed}",
            fmt="demo",
            upload_id=DEMO_PREFIX + new_id(),
        )
        return await asyncio.to_thread(self.import_demo, status, DemoWorkload(rows, seed, end=end))
