"""Budgets: the owner's spending limits. A foreign or unknown budget is not found (404)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from apex.store.models import Budget
from apex.store.repositories.owned import OwnedRows, owned_row
from apex.store.types import utcnow


class BudgetRepository(OwnedRows[Budget]):
    model = Budget
    noun = "budget"
    limit = 100

    async def create(
        self,
        user_id: str,
        *,
        name: str,
        amount_micros: int,
        period: str,
        scope: dict[str, Any],
        thresholds_pct: list[int],
    ) -> Budget:
        now = utcnow()
        return await self._add(
            user_id,
            Budget(
                user_id=user_id,
                name=name,
                amount_micros=amount_micros,
                period=period,
                scope=scope,
                thresholds_pct=thresholds_pct,
                created_at=now,
                updated_at=now,
            ),
        )

    async def update(self, user_id: str, budget_id: str, changes: dict[str, Any]) -> Budget:
        async with self.db.session() as session:
            budget = await owned_row(session, Budget, user_id, budget_id, noun=self.noun)
            for field, value in changes.items():
                setattr(budget, field, value)
            budget.updated_at = utcnow()
            await session.commit()
            return budget

    async def owners(self) -> list[str]:
        """Every user with a budget: the scheduled evaluation visits each."""
        async with self.db.session() as session:
            return list((await session.scalars(select(Budget.user_id).distinct())).all())
