"""Whether the scope's spend fits a monthly budget, before and after the recommendations."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from apex.agents.analyses.registry import AnalysisArguments, AnalysisContext, analysis
from apex.agents.scope import monthly
from apex.analytics.results import Usd
from apex.money import format_usd


class BudgetFitArguments(AnalysisArguments):
    budget_usd: Decimal = Field(gt=0, le=Decimal("1e12"), description="a month's budget, USD")
    achievable_monthly_savings_usd: Decimal = Field(
        default=Decimal(0), ge=0, description="what the recommendations save together a month"
    )


class BudgetFit(BaseModel):
    model_config = ConfigDict(frozen=True)

    budget_usd: Usd
    current_monthly_usd: Usd
    after_recommendations_monthly_usd: Usd
    fits: bool


def _headline(fit: BudgetFit) -> str:
    return (
        f"{format_usd(float(fit.after_recommendations_monthly_usd))}/month against "
        f"{format_usd(float(fit.budget_usd))}: {'fits' if fit.fits else 'over'}"
    )


@analysis(
    "budget_fit",
    "The scope's monthly run rate against a monthly budget, before and after the recommendations.",
    BudgetFitArguments,
    _headline,
    offered=False,
)
async def budget_fit(context: AnalysisContext, arguments: BudgetFitArguments) -> BudgetFit:
    totals = await context.ledger.totals(
        context.tenant_id, arguments.period, where=arguments.where(context)
    )
    current = monthly(totals.cost_usd, arguments.period)
    after = current - arguments.achievable_monthly_savings_usd
    return BudgetFit(
        budget_usd=arguments.budget_usd,
        current_monthly_usd=current,
        after_recommendations_monthly_usd=after,
        fits=after <= arguments.budget_usd,
    )
