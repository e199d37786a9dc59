"""The built-in question planner: what a message asks, in which language, and about what.

Screening runs first, so text that instructs the model cannot move the result (see `screening`);
a message that was nothing but such instructions, or a reach for other users' data, with no
question left to analyse, is `unsafe`. The intent comes from weighted cues (`intents`), the
entities from bounded patterns (`entities`), the language from a statistical identifier
(`language`). The coarse `category` follows from the intent, so the two never disagree.
A short follow-up ("and only for summarization?") inherits the intent, entities and language of
the thread's earlier question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from apex.llm.entities import extract_entities, extract_models
from apex.llm.intents import IntentVerdict, decide_intent
from apex.llm.language import DEFAULT_LANGUAGE, guess_language
from apex.llm.plan import (
    CONVERSATIONAL,
    ClassificationFlag,
    Intent,
    QuestionPlan,
    RequestCategory,
    RequestEntities,
)
from apex.llm.screening import normalize, screen

C = RequestCategory
_CATEGORY_OF_INTENT: dict[Intent, RequestCategory] = {
    Intent.SPEND: C.REPORTING,
    Intent.BREAKDOWN: C.REPORTING,
    Intent.SUMMARY: C.REPORTING,
    Intent.WHAT_IF: C.MODEL_SELECTION,
    Intent.COMPARE: C.MODEL_SELECTION,
    Intent.MODEL_SELECTION: C.MODEL_SELECTION,
    Intent.LATENCY: C.LATENCY,
    Intent.FORECAST: C.CAPACITY,
    Intent.RELIABILITY: C.COST,
    Intent.CACHING: C.COST,
    Intent.BATCHING: C.COST,
    Intent.COST_REDUCTION: C.COST,
    Intent.BUDGET: C.COST,
    Intent.GREETING: C.GENERAL,
    Intent.OFF_TOPIC: C.OFF_TOPIC,
    Intent.UNSAFE: C.OFF_TOPIC,
}
# failures that are about limits rather than faults ("we keep getting 429s") are capacity
_CAPACITY = re.compile(
    r"\b(?:rate[- ]?limits?|rate[- ]limited|throttl\w*|quotas?|429s?|too many requests"
    r"|capacity|throughput|headroom|provisioned|concurren\w*|tpm|rpm|kapazität|durchsatz"
    r"|capacité|débit)\b"
)
_FOLLOW_UP = re.compile(
    r"^(?:and|also|plus|but|then|so|ok(?:ay)?|now|what about|how about|only|just|same|instead"
    r"|excluding|without|except|what if|und|auch|aber|dann|nur|was ist mit|wie wäre es mit"
    r"|stattdessen|ohne|außer|et|aussi|mais|puis|seulement|uniquement|qu'en est-il|sans"
    r"|sauf)\b"
)
_MAX_FOLLOW_UP_WORDS = 12
_MAX_HISTORY = 8


def _category(intent: Intent, body: str) -> RequestCategory:
    if intent is Intent.RELIABILITY and _CAPACITY.search(body):
        return C.CAPACITY
    return _CATEGORY_OF_INTENT[intent]


def _scoped_entities(intent: Intent, entities: RequestEntities, body: str) -> RequestEntities:
    """The entities as the intent reads them.

    A comparison compares every model it names, so none is a move target; only a breakdown
    groups by a dimension; a conversational answer is about nothing in particular.
    """
    if intent in CONVERSATIONAL:
        return RequestEntities()
    update: dict[str, object] = {}
    if intent is not Intent.BREAKDOWN and entities.dimension is not None:
        update["dimension"] = None
    if intent is Intent.COMPARE and entities.target_models:
        update.update(models=extract_models(body), target_models=[])
    return entities.model_copy(update=update) if update else entities


def _confidence(verdict: IntentVerdict) -> float:
    if verdict.cued:
        return round(min(0.97, 0.55 + 0.05 * verdict.score + 0.08 * verdict.margin), 2)
    return 0.9 if verdict.intent is Intent.OFF_TOPIC else 0.6


@dataclass(frozen=True, slots=True)
class _Reading:
    """One message as planned, with what the thread logic needs to know about how."""

    plan: QuestionPlan
    verdict: IntentVerdict
    language: str | None
    body: str


def _read(text: str) -> _Reading:
    """The plan of one message, how its intent was reached, and its language if it shows one."""
    screened = screen(text)
    body = screened.text
    entities = extract_entities(body)
    verdict = decide_intent(body, entities)
    intent = verdict.intent
    if screened.flags and not verdict.cued and intent is not Intent.SUMMARY:
        intent = Intent.UNSAFE
    if (
        ClassificationFlag.OTHER_USERS_DATA in screened.flags
        and intent is Intent.COMPARE
        and len(entities.models) < 2
    ):
        # "compare their spend with mine": the only thing to compare with is someone else
        intent = Intent.UNSAFE
    language = guess_language(body or normalize(text))
    plan = QuestionPlan(
        category=_category(intent, body),
        intent=intent,
        language=language or DEFAULT_LANGUAGE,
        confidence=_confidence(verdict),
        entities=_scoped_entities(intent, entities, body),
        flags=list(screened.flags),
        signals=list(verdict.signals),
    )
    return _Reading(plan, verdict, language, body)


def _looks_like_follow_up(reading: _Reading) -> bool:
    words = reading.body.split()
    if not words or len(words) > _MAX_FOLLOW_UP_WORDS:
        return False
    if _FOLLOW_UP.search(" ".join(words)):
        return True
    return not reading.verdict.cued and reading.plan.entities != RequestEntities()


def classify_request(text: str, history: Sequence[str] = ()) -> QuestionPlan:
    """Plan `text`; `history` holds the thread's earlier user messages, oldest first."""
    reading = _read(text)
    plan = reading.plan
    history = history[-_MAX_HISTORY:]
    if (
        not history
        or reading.verdict.off_domain
        or plan.intent is Intent.UNSAFE
        or not _looks_like_follow_up(reading)
    ):
        return plan
    earlier = classify_request(history[-1], history[:-1])
    if earlier.intent in CONVERSATIONAL:
        return plan
    inherits = not reading.verdict.cued
    return QuestionPlan(
        category=earlier.category if inherits else plan.category,
        intent=earlier.intent if inherits else plan.intent,
        language=reading.language or earlier.language,
        confidence=earlier.confidence if inherits else plan.confidence,
        entities=plan.entities.merged_over(earlier.entities),
        flags=plan.flags,
        follow_up=True,
        signals=plan.signals,
    )
