"""The question as understood (PROTOCOL.md section 5, `report.question`), checked against the
caller's own rows and the price catalog.

The plan a language model made names models, providers and features as the user wrote them; a
name only narrows the analysis once it matches the caller's rows (or, for models, the catalog).
A name that matches nothing is reported as `unknown` and never computed. Periods resolve against
today's date in UTC; with none named, a report covers the 30 days that end at the caller's newest
row, which never counts the platform's own metered calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from apex.agents.scope import day_start
from apex.analytics.filters import OWN_CALLS_FEATURE, UsageFilter, analysed_rows
from apex.analytics.periods import default_period_ending
from apex.analytics.pricing import PriceCatalog
from apex.analytics.results import UsageNames, UsagePeriod
from apex.llm import Intent, QuestionPlan, RequestedPeriod, SpendBudget
from apex.timestamps import as_utc, format_timestamp

# what a forecast is for when the question names no period
NEXT_MONTH = RequestedPeriod(text="next month", calendar="next_month")


class ReportPeriod(BaseModel):
    """`{from, to}` of a report or a question, ISO 8601 UTC with milliseconds."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    start: str | None = Field(default=None, alias="from")
    end: str | None = Field(default=None, alias="to")

    @classmethod
    def of(cls, period: UsagePeriod | None) -> ReportPeriod:
        if period is None:
            return cls()
        return cls(
            start=format_timestamp(as_utc(period.start)), end=format_timestamp(as_utc(period.end))
        )


class ReportQuestion(BaseModel):
    """`report.question`: how the question was understood."""

    model_config = ConfigDict(frozen=True)

    intent: Intent
    language: str = "en"
    period: ReportPeriod = Field(default_factory=ReportPeriod)
    models: list[str] = Field(default_factory=list)
    target_models: list[str] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)
    providers: list[str] = Field(default_factory=list)
    target_pct: float | None = None
    budget_usd: float | None = None
    unknown: list[str] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Understood:
    """The question checked against the data: what the report says, and what the reads use."""

    question: ReportQuestion
    # the period every figure covers (None: no data to anchor a default period)
    period: UsagePeriod | None
    where: UsageFilter
    # a dimension whose every named name was unknown: nothing can be computed
    nothing_to_compute: bool = False
    # the period a forecast is for (question.period), when it differs from `period`
    forecast: UsagePeriod | None = None
    # what a breakdown groups by, when the question said
    dimension: str | None = None
    # the budget the user asked to have set up (the chat describes it; creating stays theirs)
    budget_request: SpendBudget | None = None


def _match(named: Sequence[str], known: dict[str, str]) -> tuple[list[str], list[str]]:
    """(matched spellings, unknown names) of the names a question gave. A name matches its own
    spelling, else every known name of that family ("claude" -> "claude-sonnet-4", ...,
    "mistral" -> "mistral_ai")."""
    found: list[str] = []
    unknown: list[str] = []
    for name in named:
        key = name.lower()
        spelled = (
            [known[key]]
            if key in known
            else [
                value
                for lowered, value in sorted(known.items())
                if lowered.startswith((key + "-", key + "_", key + "."))
            ]
        )
        if not spelled:
            unknown.append(name)
        found.extend(value for value in spelled if value not in found)
    return found, unknown


def _catalog_models(catalog: PriceCatalog, named: Sequence[str]) -> dict[str, str]:
    spellings: dict[str, str] = {}
    for name in named:
        price = catalog.resolve(name)
        if price is not None:
            spellings[name.lower()] = price.id
    return spellings


def understand(
    plan: QuestionPlan,
    *,
    names: Sequence[UsageNames],
    catalog: PriceCatalog,
    newest: datetime | None,
    today: date,
) -> Understood:
    """`plan` checked against the caller's names and the catalog, its period resolved.

    `newest` is the caller's newest row that is not one of the platform's own calls.
    """
    entities = plan.entities
    features_known = {n.feature.lower(): n.feature for n in names if n.feature}
    models_known = {n.model.lower(): n.model for n in names}
    providers_known = {n.provider.lower(): n.provider for n in names}
    models, unknown_models = _match(
        entities.models, {**_catalog_models(catalog, entities.models), **models_known}
    )
    targets, unknown_targets = _match(
        entities.target_models, _catalog_models(catalog, entities.target_models)
    )
    # rows that carry no feature at all cannot be narrowed by one: the data lacks the column
    # (triage reports it missing) rather than the question naming something unknown
    named_features = entities.features if features_known else []
    features, unknown_features = _match(named_features, features_known)
    providers, unknown_providers = _match(entities.providers, providers_known)
    unknown = list(
        dict.fromkeys([*unknown_models, *unknown_targets, *unknown_providers, *unknown_features])
    )
    nothing = any(
        named and not found
        for named, found in (
            (entities.models, models),
            (entities.providers, providers),
            (named_features, features),
            (entities.target_models, targets),
        )
    )
    analysed = analysed_rows(() if OWN_CALLS_FEATURE in features else features_known.values())
    where = replace(
        analysed, models=tuple(models), providers=tuple(providers), features=tuple(features)
    )
    period, forecast = _periods(plan, newest, today)
    budget = entities.budgets[0] if entities.budgets else None
    target = next((t.percent for t in entities.targets if t.metric in (None, "cost")), None)
    asked = forecast or period
    question = ReportQuestion(
        intent=plan.intent,
        language=plan.language,
        period=ReportPeriod.of(asked),
        models=models,
        target_models=targets,
        features=features,
        providers=providers,
        target_pct=target,
        budget_usd=None if budget is None else round(budget.monthly_usd or budget.amount_usd, 2),
        unknown=unknown,
    )
    return Understood(
        question=question,
        period=period,
        where=where,
        nothing_to_compute=nothing,
        forecast=forecast,
        dimension=entities.dimension,
        budget_request=budget if budget is not None and budget.setup else None,
    )


def _periods(
    plan: QuestionPlan, newest: datetime | None, today: date
) -> tuple[UsagePeriod | None, UsagePeriod | None]:
    """(the period the figures cover, the forecast's period when the question is a forecast)."""
    requested = plan.entities.period
    default = default_period_ending(newest) if newest is not None else None
    if plan.intent is Intent.FORECAST:
        start, end = (requested or NEXT_MONTH).resolve(today, future=True)
        return default, UsagePeriod(start=day_start(start), end=day_start(end))
    if requested is None:
        return default, None
    start, end = requested.resolve(today)
    return UsagePeriod(start=day_start(start), end=day_start(end)), None


def question_of(plan: QuestionPlan, **changes: Any) -> ReportQuestion:
    """The question of a run that read no data (greeting, off topic, no rows)."""
    entities = plan.entities
    return ReportQuestion(
        intent=plan.intent,
        language=plan.language,
        models=list(entities.models),
        target_models=list(entities.target_models),
        features=list(entities.features),
        providers=list(entities.providers),
        **changes,
    )
