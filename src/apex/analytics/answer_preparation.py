"""Answers prepared ahead of time, in background threads, for what is asked first."""

from __future__ import annotations

import threading
from collections.abc import Callable

from apex.analytics import queries as q
from apex.analytics.filters import ANALYSED_ROWS, analysed_rows
from apex.analytics.ledger_reads import MIN_OUTLIER_REQUESTS, LedgerReads
from apex.analytics.periods import default_period_ending
from apex.analytics.upload_records import UploadRecords
from apex.config.logging import get_logger

log = get_logger(__name__)


class AnswerPreparation(LedgerReads, UploadRecords):
    """Background passes that fill the answer store after new rows arrive or a restart."""

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
