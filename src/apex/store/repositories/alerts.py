"""Alerts: raised once per cause and period, listed newest first, marked read by their owner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from apex.store.database import Database
from apex.store.models import Alert
from apex.store.pagination import Page, decode_cursor, page_of
from apex.store.repositories.owned import owned_row
from apex.store.types import utcnow


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert an evaluation found; `cause_key` (at most 64 characters) names its cause and
    period, so the same finding made again, by any process, is not raised twice."""

    kind: str
    cause_key: str
    scope: dict[str, Any]
    message: str
    value_micros: int
    threshold_micros: int | None = None
    budget_id: str | None = None


class AlertRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def raise_new(
        self,
        user_id: str,
        drafts: list[AlertDraft],
        *,
        with_each: Callable[[AsyncSession, Alert], Awaitable[None]] | None = None,
    ) -> list[Alert]:
        """Store the drafts whose cause has no alert yet; returns those just raised. The unique
        key decides a race between processes: the loser's insert fails and it raises nothing.
        `with_each` writes what goes with an alert (what its webhooks are owed) in the alert's
        own transaction: an alert is never stored without it."""
        if not drafts:
            return []
        async with self.db.session() as session:
            known = set(
                (
                    await session.scalars(
                        select(Alert.cause_key).where(
                            Alert.user_id == user_id,
                            Alert.cause_key.in_([d.cause_key for d in drafts]),
                        )
                    )
                ).all()
            )
        raised: list[Alert] = []
        for draft in drafts:
            if draft.cause_key in known:
                continue
            known.add(draft.cause_key)
            alert = Alert(
                user_id=user_id,
                kind=draft.kind,
                cause_key=draft.cause_key,
                scope=draft.scope,
                message=draft.message,
                value_micros=draft.value_micros,
                threshold_micros=draft.threshold_micros,
                budget_id=draft.budget_id,
                created_at=utcnow(),
            )
            async with self.db.session() as session:
                session.add(alert)
                try:
                    await session.flush()
                except IntegrityError:
                    await session.rollback()
                    continue
                if with_each is not None:
                    await with_each(session, alert)
                await session.commit()
            raised.append(alert)
        return raised

    async def list(self, user_id: str, *, limit: int, cursor: str | None = None) -> Page[Alert]:
        """Newest first."""
        query = select(Alert).where(Alert.user_id == user_id)
        if cursor:
            moment, row_id = decode_cursor(cursor)
            query = query.where(
                or_(Alert.created_at < moment, and_(Alert.created_at == moment, Alert.id < row_id))
            )
        query = query.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit + 1)
        async with self.db.session() as session:
            rows = list((await session.scalars(query)).all())
        return page_of(rows, limit, lambda alert: (alert.created_at, alert.id))

    async def unread_count(self, user_id: str) -> int:
        async with self.db.session() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Alert)
                .where(Alert.user_id == user_id, Alert.read_at.is_(None))
            )
        return int(count or 0)

    async def mark_read(self, user_id: str, alert_id: str) -> None:
        """Idempotent: an alert read before keeps its first `read_at`."""
        async with self.db.session() as session:
            alert = await owned_row(session, Alert, user_id, alert_id, noun="alert")
            if alert.read_at is None:
                alert.read_at = utcnow()
                await session.commit()
