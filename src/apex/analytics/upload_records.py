"""An upload's way into the ledger and its record there, and the erasure of a tenant's rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Protocol

import pyarrow as pa

from apex.analytics.ledger_core import LedgerCore
from apex.analytics.row_values import as_int
from apex.analytics.statement import Binder
from apex.analytics.uploads import UploadStatus


class UploadWriter(Protocol):
    """An upload in progress: staged rows are invisible until `commit`."""

    def stage(self, rows: pa.Table) -> None: ...
    def commit(self) -> tuple[int, int]: ...
    def discard(self) -> None: ...


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


class UploadRecords(LedgerCore):
    """Upload writers (per engine), upload records, and erasing rows and records."""

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
                    *self._rollup_rebuild(tenant_id),
                ]
            )
            self.rows_changed(tenant_id)

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
        if status.state != "processing" or quiet < self.abandoned_after:
            return status
        return self.settle_upload(status)

    def _uploads_select(self, bind: Binder, tenant_id: str) -> str:
        return f"SELECT document FROM {self._uploads_source()} WHERE tenant_id = {bind(tenant_id)}"

    def _uploads_source(self) -> str:
        return self._table("uploads")

    @staticmethod
    def _upload_document(status: UploadStatus) -> str:
        return json.dumps({**status.model_dump(mode="json"), "tenant_id": status.tenant_id})
