"""Budgets (PROTOCOL section 6): the caller's own only; anything else is 404.

Each listed budget carries its current period's spend, projection and state, computed from the
ledger when asked (see `apex.monitoring.budgets`). Creating or changing a budget evaluates the
caller's alerts at once, so a budget already over its threshold says so without waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StringConstraints

from apex.api.deps import CurrentPrincipal
from apex.errors import BadRequest
from apex.monitoring.budgets import budget_status
from apex.monitoring.money import micros_json, to_micros
from apex.monitoring.service import Monitoring
from apex.store.models import Budget
from apex.timestamps import format_timestamp

router = APIRouter(prefix="/api/budgets", tags=["budgets"])

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ScopeName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ScopeNames = Annotated[list[ScopeName], Field(max_length=50)]
Amount = Annotated[Decimal, Field(gt=0, le=1_000_000_000_000, allow_inf_nan=False)]
Thresholds = Annotated[
    list[Annotated[int, Field(ge=1, le=1_000)]], Field(min_length=1, max_length=10)
]
DEFAULT_THRESHOLDS = [50, 80, 100]


class BudgetScope(BaseModel):
    models: ScopeNames = Field(default_factory=list)
    providers: ScopeNames = Field(default_factory=list)
    features: ScopeNames = Field(default_factory=list)

    def stored(self) -> dict[str, list[str]]:
        return {key: sorted(set(getattr(self, key))) for key in ("models", "providers", "features")}


class BudgetCreate(BaseModel):
    name: Name
    amount_usd: Amount
    period: Literal["day", "month"]
    scope: BudgetScope = Field(default_factory=BudgetScope)
    thresholds_pct: Thresholds = Field(default_factory=lambda: list(DEFAULT_THRESHOLDS))


class BudgetUpdate(BaseModel):
    name: Name | None = None
    amount_usd: Amount | None = None
    period: Literal["day", "month"] | None = None
    scope: BudgetScope | None = None
    thresholds_pct: Thresholds | None = None


def _monitoring(request: Request) -> Monitoring:
    monitoring: Monitoring = request.app.state.monitoring
    return monitoring


def _micros(amount: Decimal) -> int:
    micros = to_micros(amount)
    if micros < 1:
        raise BadRequest("amount_usd must be at least $0.000001.", code="invalid_amount")
    return micros


async def _view(request: Request, user_id: str, budget: Budget) -> dict[str, Any]:
    status = await budget_status(request.app.state.ledger, user_id, budget, datetime.now(UTC))
    return {
        "id": budget.id,
        "name": budget.name,
        "amount_usd": micros_json(budget.amount_micros),
        "period": budget.period,
        "scope": budget.scope,
        "thresholds_pct": budget.thresholds_pct,
        "spent_usd": micros_json(to_micros(status.spent)),
        "projected_usd": micros_json(to_micros(status.projected)),
        "state": status.state,
        "period_start": format_timestamp(status.window.start),
        "period_end": format_timestamp(status.window.end),
        "created_at": format_timestamp(budget.created_at),
        "updated_at": format_timestamp(budget.updated_at),
    }


@router.post("", status_code=201)
async def create_budget(
    request: Request, principal: CurrentPrincipal, body: BudgetCreate
) -> dict[str, Any]:
    monitoring = _monitoring(request)
    budget = await monitoring.budgets.create(
        principal.user_id,
        name=body.name,
        amount_micros=_micros(body.amount_usd),
        period=body.period,
        scope=body.scope.stored(),
        thresholds_pct=sorted(set(body.thresholds_pct)),
    )
    monitoring.triggers.evaluate_soon(principal.user_id)
    return await _view(request, principal.user_id, budget)


@router.get("")
async def list_budgets(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    budgets = await _monitoring(request).budgets.list(principal.user_id)
    return {"items": [await _view(request, principal.user_id, b) for b in budgets]}


@router.get("/{budget_id}")
async def get_budget(
    request: Request, principal: CurrentPrincipal, budget_id: str
) -> dict[str, Any]:
    budget = await _monitoring(request).budgets.get(principal.user_id, budget_id)
    return await _view(request, principal.user_id, budget)


@router.patch("/{budget_id}")
async def update_budget(
    request: Request, principal: CurrentPrincipal, budget_id: str, body: BudgetUpdate
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for field in body.model_fields_set:
        value = getattr(body, field)
        if value is None:
            raise BadRequest(f"{field} cannot be null.", code="validation_error")
        if field == "amount_usd":
            changes["amount_micros"] = _micros(value)
        elif field == "scope":
            changes["scope"] = value.stored()
        elif field == "thresholds_pct":
            changes["thresholds_pct"] = sorted(set(value))
        else:
            changes[field] = value
    monitoring = _monitoring(request)
    budget = await monitoring.budgets.update(principal.user_id, budget_id, changes)
    monitoring.triggers.evaluate_soon(principal.user_id)
    return await _view(request, principal.user_id, budget)


@router.delete("/{budget_id}", status_code=204)
async def delete_budget(request: Request, principal: CurrentPrincipal, budget_id: str) -> Response:
    await _monitoring(request).budgets.delete(principal.user_id, budget_id)
    return Response(status_code=204)
