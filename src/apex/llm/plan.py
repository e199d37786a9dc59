"""The question plan: what a request asks for, the structured output of triage whichever model
produced it (PROTOCOL.md section 5: intent, scope, period, targets, budget, language).

These types are also the JSON schema a provider must fill, so every field is bounded: a model (or
text injected into its prompt) can pick a category and name models, features and periods, and
nothing else. There is deliberately no field that could name a user, a tenant or a query: whose
data is read is decided by the caller's identity, never by the model.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_ENTITIES = 20
ENTITY_NAME = re.compile(r"[^a-z0-9.:/_+\-]+")


def _entity_name(value: str) -> str:
    """Lower-case, hyphenated, and stripped of anything that is not part of a model or tag name."""
    return ENTITY_NAME.sub("-", value.strip().lower()).strip("-")[:80]


SPAN_TEXT = re.compile(r"[^\w\s$%.,:/+\-]+")


def _span_text(value: str) -> str:
    """Quoted user wording, kept to characters that cannot carry markup into rendered prose."""
    return " ".join(SPAN_TEXT.sub(" ", value).split())[:80]


EntityName = Annotated[str, AfterValidator(_entity_name)]
SpanText = Annotated[str, Field(max_length=400), AfterValidator(_span_text)]


class RequestCategory(StrEnum):
    COST = "cost"
    LATENCY = "latency"
    MODEL_SELECTION = "model_selection"
    CAPACITY = "capacity"
    REPORTING = "reporting"
    GENERAL = "general"
    OFF_TOPIC = "off_topic"


class Intent(StrEnum):
    """What the user wants answered (PROTOCOL.md section 5): each has its analyses and answer."""

    COST_REDUCTION = "cost_reduction"
    SPEND = "spend"
    BREAKDOWN = "breakdown"
    WHAT_IF = "what_if"
    COMPARE = "compare"
    FORECAST = "forecast"
    BUDGET = "budget"
    LATENCY = "latency"
    RELIABILITY = "reliability"
    CACHING = "caching"
    BATCHING = "batching"
    MODEL_SELECTION = "model_selection"
    SUMMARY = "summary"
    GREETING = "greeting"
    OFF_TOPIC = "off_topic"
    UNSAFE = "unsafe"


# intents answered without reading any data
CONVERSATIONAL = frozenset({Intent.GREETING, Intent.OFF_TOPIC, Intent.UNSAFE})
# what an intent falls back to when a model named only the older, coarser category
_INTENT_OF_CATEGORY = {
    "cost": Intent.COST_REDUCTION,
    "latency": Intent.LATENCY,
    "model_selection": Intent.MODEL_SELECTION,
    "capacity": Intent.FORECAST,
    "reporting": Intent.SUMMARY,
    "general": Intent.GREETING,
    "off_topic": Intent.OFF_TOPIC,
}
Dimension = Literal["feature", "model", "provider"]


class ClassificationFlag(StrEnum):
    PROMPT_INJECTION = "prompt_injection"
    OTHER_USERS_DATA = "other_users_data"


CalendarPeriod = Literal[
    "today",
    "yesterday",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
    "next_week",
    "next_month",
    "next_quarter",
    "next_year",
]


class RequestedPeriod(BaseModel):
    """A period as the user named it, resolved against today's date (UTC) when the run starts.

    PROTOCOL.md section 5: "yesterday" is the previous calendar day, "last week" the previous
    Monday to Sunday, "this month" the 1st to today, "last month" the previous calendar month,
    "last N days" the N calendar days ending today, "next month" the next calendar month; "in
    March" names the most recent March that has begun, "since 2026-10-01" is absolute. Exactly
    one way of naming is set; `resolve` turns it into a half-open range of days.
    """

    model_config = ConfigDict(frozen=True)

    text: SpanText
    last_days: int | None = Field(default=None, ge=1, le=3_660)
    calendar: CalendarPeriod | None = None
    month: int | None = Field(default=None, ge=1, le=12)
    quarter: int | None = Field(default=None, ge=1, le=4)
    year: int | None = Field(default=None, ge=2000, le=2100)
    start: date | None = None
    end: date | None = Field(default=None, description="exclusive")
    to_anchor: bool = Field(default=False, description="named a start only: runs to today")

    def resolve(self, today: date, *, future: bool = False) -> tuple[date, date]:
        """The days [start, end) this period covers. A period about the past ends with today
        at the latest; `future` (a forecast) lets it run past today."""
        limit = today + timedelta(days=1)
        start, end = self._bounds(today)
        if self.to_anchor:
            end = limit
        if not future:
            end = min(end, limit)
        return (min(start, end), end)

    @property
    def is_future(self) -> bool:
        """Names a period after today ("next month")."""
        return self.calendar is not None and self.calendar.startswith("next_")

    def _bounds(self, today: date) -> tuple[date, date]:
        limit = today + timedelta(days=1)
        if self.start is not None or self.end is not None:
            end = self.end or limit
            return (self.start or end - timedelta(days=30), end)
        if self.last_days is not None:
            return (limit - timedelta(days=self.last_days), limit)
        if self.calendar is not None:
            return _calendar_bounds(self.calendar, today)
        if self.month is not None:
            year = self.year or (today.year if self.month <= today.month else today.year - 1)
            return _month_bounds(year, self.month)
        if self.quarter is not None:
            this_quarter = (today.month - 1) // 3 + 1
            year = self.year or (today.year if self.quarter <= this_quarter else today.year - 1)
            return _quarter_bounds(year, self.quarter)
        if self.year is not None:
            return (date(self.year, 1, 1), date(self.year + 1, 1, 1))
        return (limit - timedelta(days=30), limit)


def _month_bounds(year: int, month: int) -> tuple[date, date]:
    days = calendar.monthrange(year, month)[1]
    return (date(year, month, 1), date(year, month, days) + timedelta(days=1))


def _quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    first_month = 3 * (quarter - 1) + 1
    start = date(year, first_month, 1)
    return (start, _month_bounds(year, first_month + 2)[1])


def _calendar_bounds(period: CalendarPeriod, anchor: date) -> tuple[date, date]:
    limit = anchor + timedelta(days=1)
    week_start = anchor - timedelta(days=anchor.weekday())
    month_start = anchor.replace(day=1)
    quarter = (anchor.month - 1) // 3 + 1
    if period == "today":
        return (anchor, limit)
    if period == "yesterday":
        return (anchor - timedelta(days=1), anchor)
    if period == "this_week":
        return (week_start, limit)
    if period == "last_week":
        return (week_start - timedelta(days=7), week_start)
    if period == "this_month":
        return (month_start, limit)
    if period == "last_month":
        previous = month_start - timedelta(days=1)
        return _month_bounds(previous.year, previous.month)
    if period == "this_quarter":
        return (_quarter_bounds(anchor.year, quarter)[0], limit)
    if period == "last_quarter":
        year, earlier = (anchor.year, quarter - 1) if quarter > 1 else (anchor.year - 1, 4)
        return _quarter_bounds(year, earlier)
    if period == "this_year":
        return (date(anchor.year, 1, 1), limit)
    if period == "next_week":
        return (week_start + timedelta(days=7), week_start + timedelta(days=14))
    if period == "next_month":
        following = _month_bounds(anchor.year, anchor.month)[1]
        return _month_bounds(following.year, following.month)
    if period == "next_quarter":
        year, later = (anchor.year, quarter + 1) if quarter < 4 else (anchor.year + 1, 1)
        return _quarter_bounds(year, later)
    if period == "next_year":
        return (date(anchor.year + 1, 1, 1), date(anchor.year + 2, 1, 1))
    return (date(anchor.year - 1, 1, 1), date(anchor.year, 1, 1))


class ReductionTarget(BaseModel):
    """A percentage the user wants to reach, e.g. "cut costs by 30%"."""

    model_config = ConfigDict(frozen=True)

    percent: float = Field(gt=0, le=100)
    metric: Literal["cost", "latency", "tokens", "errors"] | None = None
    text: SpanText


class SpendBudget(BaseModel):
    """A spending limit the user named, e.g. "a budget of $5k/month"."""

    model_config = ConfigDict(frozen=True)

    amount_usd: float = Field(gt=0, le=1e12)
    per: Literal["day", "week", "month", "year"] | None = None
    text: SpanText
    setup: bool = Field(
        default=False,
        description="the user asks to set up (create) this budget, not to check spend against it",
    )

    @property
    def monthly_usd(self) -> float | None:
        factors = {"day": 30.0, "week": 30.0 / 7.0, "month": 1.0, "year": 1.0 / 12.0}
        return None if self.per is None else self.amount_usd * factors[self.per]


class RequestEntities(BaseModel):
    model_config = ConfigDict(frozen=True)

    models: list[EntityName] = Field(default_factory=list, max_length=MAX_ENTITIES)
    target_models: list[EntityName] = Field(
        default_factory=list,
        max_length=MAX_ENTITIES,
        description="models the question would move traffic to (what-if), not its scope",
    )
    providers: list[EntityName] = Field(default_factory=list, max_length=MAX_ENTITIES)
    features: list[EntityName] = Field(default_factory=list, max_length=MAX_ENTITIES)
    period: RequestedPeriod | None = None
    targets: list[ReductionTarget] = Field(default_factory=list, max_length=MAX_ENTITIES)
    budgets: list[SpendBudget] = Field(default_factory=list, max_length=MAX_ENTITIES)
    percentiles: list[float] = Field(default_factory=list, max_length=MAX_ENTITIES)
    latency_target_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    dimension: Dimension | None = Field(default=None, description="what a breakdown groups by")

    def merged_over(self, earlier: RequestEntities) -> RequestEntities:
        """This turn's entities, with anything it leaves unsaid taken from the earlier turn."""
        mine = self.model_dump(exclude_defaults=True)
        return RequestEntities.model_validate({**earlier.model_dump(), **mine})


class QuestionPlan(BaseModel):
    """Triage's answer: what kind of question, about what, and anything suspicious in it.

    `intent` decides which analyses run and how the answer reads; `category` is the coarser
    kind the data-sufficiency rules and the prose templates use. A model that names only the
    category gets the intent that category implies.
    """

    model_config = ConfigDict(frozen=True)

    category: RequestCategory
    intent: Intent
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$")] = "en"
    confidence: float = Field(default=0.5, ge=0, le=1)
    entities: RequestEntities = Field(default_factory=RequestEntities)
    flags: list[ClassificationFlag] = Field(default_factory=list, max_length=4)
    follow_up: bool = False
    signals: list[SpanText] = Field(default_factory=list, max_length=MAX_ENTITIES)

    @model_validator(mode="before")
    @classmethod
    def _intent_from_category(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("intent") is None:
            category = str(data.get("category", "general"))
            data = {**data, "intent": _INTENT_OF_CATEGORY.get(category, Intent.SUMMARY)}
        return data

    def summary(self) -> str:
        """One sentence for an `agent_thinking` event, built only from the bounded fields."""
        entities = self.entities
        parts = [f"{self.intent.value.replace('_', ' ')} question"]
        if self.follow_up:
            parts[0] += " (follow-up)"
        if entities.period is not None:
            parts.append(f"period {entities.period.text}")
        if entities.models:
            parts.append("models " + ", ".join(entities.models))
        if entities.target_models:
            parts.append("moving to " + ", ".join(entities.target_models))
        if entities.providers:
            parts.append("providers " + ", ".join(entities.providers))
        if entities.features:
            parts.append("features " + ", ".join(entities.features))
        if entities.targets:
            parts.append("targets " + ", ".join(f"{t.percent:g}%" for t in entities.targets))
        if entities.budgets:
            parts.append("budgets " + ", ".join(b.text for b in entities.budgets))
        if entities.percentiles:
            parts.append("percentiles " + ", ".join(f"p{p:g}" for p in entities.percentiles))
        if entities.latency_target_ms is not None:
            parts.append(f"latency target {entities.latency_target_ms:,.0f} ms")
        if self.flags:
            parts.append("flags " + ", ".join(flag.value for flag in self.flags))
        return "; ".join(parts) + f" (confidence {self.confidence:.2f})."
