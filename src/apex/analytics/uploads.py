"""The record of one upload: its progress while it runs and its report when it is done."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from apex.analytics.results import TimeSpan, UtcTime

UploadState = Literal["processing", "completed", "failed"]


class RowProblem(BaseModel):
    line: int
    message: str


class UnpricedModel(BaseModel):
    """Rows that arrived without a cost for a model the price catalog does not know."""

    provider: str
    model: str
    rows: int


class UploadStatus(BaseModel):
    """`rows_processed` grows while the file is read; the report fields are final once
    `state` is `completed`. `errors` holds the first 50 rejected rows, in line order."""

    upload_id: str
    tenant_id: str = Field(exclude=True)
    filename: str
    format: str
    state: UploadState
    bytes_total: int | None = None
    bytes_read: int = 0
    rows_processed: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rows_skipped: int = 0
    errors: list[RowProblem] = Field(default_factory=list)
    unpriced: list[UnpricedModel] = Field(default_factory=list)
    period: TimeSpan = Field(default_factory=TimeSpan)
    message: str | None = None
    created_at: UtcTime
    updated_at: UtcTime

    def touched(self, now: datetime) -> UploadStatus:
        return self.model_copy(update={"updated_at": now})
