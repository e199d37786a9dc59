"""The built-in classifier: which kind of question a request is, by weighted rules over its text.

Each category has cues with weights; the highest total wins, ties going to the more specific
category (model choice before latency before capacity before cost before reporting). A request
with no cue is `general` when it is about LLM usage at all and `off_topic` otherwise; a cue of
another domain (weather, recipes, poems) wins unless the text is plainly about LLMs too. Screening
runs first, so text that instructs the model cannot move the result (see `screening`).
A short follow-up ("and only for summarization?") inherits the category and entities of the
thread's earlier question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from apex.llm.classification import RequestCategory, RequestClassification, RequestEntities
from apex.llm.entities import extract_entities
from apex.llm.screening import screen

Cue = tuple[re.Pattern[str], float]


def _cues(*pairs: tuple[str, float]) -> tuple[Cue, ...]:
    return tuple((re.compile(pattern), weight) for pattern, weight in pairs)


_CUES: dict[RequestCategory, tuple[Cue, ...]] = {
    RequestCategory.MODEL_SELECTION: _cues(
        (r"\b(?:which|what|best|right|better|alternative|smaller|cheaper|cheapest|faster"
         r"|open[- ]source|open[- ]weights?|other|different|another|new|newer|mini|lighter)"
         r" (?:llm|model)s?\b", 3),
        (r"\bmodel (?:choice|selection|routing|mix|switch|migration)\b", 3),
        (r"\b(?:switch|switching|move|moving|migrate|migrating|swap|swapping|replace|replacing"
         r"|downgrade|downgrading|upgrade|route|routing|router|fall ?back to)\b", 2),
        (r"\b(?:vs\.?|versus|compared? (?:to|with)|comparison|instead of|rather than)\b", 2),
        (r"\bshould (?:i|we) use\b", 2),
        (r"\bworth (?:it|using|switching)\b", 1),
        (r"\b(?:quality|accuracy|good enough|capable|smart enough)\b", 1),
    ),
    RequestCategory.LATENCY: _cues(
        (r"\b(?:latency|latencies)\b", 4),
        (r"\bp(?:50|75|90|95|99)\b|\bpercentile\b|\bttft\b|\btime to first token\b", 4),
        (r"\b(?:slow|slower|slowest|sluggish|laggy|lag|lagging|delay|delays|delayed)\b", 3),
        (r"\b(?:response|wait|waiting|load|processing) times?\b|\btakes? (?:too |so )?long\b", 3),
        (r"\b(?:fast|faster|fastest|speed|speed up|quick|quicker|snappy|responsive)\b", 2),
        (r"\b(?:timeouts?|timing out|timed out|hangs?|stall\w*)\b", 2),
        (r"\b\d+(?:\.\d+)?\s?(?:ms|milliseconds?|seconds?)\b", 1),
    ),
    RequestCategory.CAPACITY: _cues(
        (r"\b(?:capacity|throughput|rate[- ]?limits?|rate[- ]limited|throttl\w*|quotas?)\b", 4),
        (r"\b429s?\b|\btoo many requests\b", 4),
        (r"\b(?:tpm|rpm|rps|qps|tokens per (?:minute|second)|requests per (?:minute|second|hour))"
         r"\b", 4),
        (r"\b(?:concurrency|concurrent|parallel|provisioned|ptu|reserved capacity|headroom)\b", 3),
        (r"\b(?:scale|scaling|scale up|peak|peaks|burst|bursts|spikes?|traffic growth|forecast"
         r"|grow|growing|10x|double|tripl\w*|load test|volume)\b", 2),
        (r"\bhow many (?:requests|calls|tokens|users)\b", 2),
        (r"\bhandle\b.{0,30}?\b(?:traffic|load|volume|requests|spikes?|peaks?)\b", 3),
    ),
    RequestCategory.COST: _cues(
        (r"\b(?:costs?|costing|costly|spend|spending|bills?|billing|invoices?|expenses?"
         r"|expensive|pricey|money|dollars?|usd|budget|burn|burning|cheap|cheaper|cheapest"
         r"|afford\w*)\b", 2),
        (r"\b(?:save|saves|saving|savings|roi|waste|wasted|wasting|overspend\w*|overpay\w*)\b", 2),
        (r"\b(?:cut|cutting|reduce|reducing|lower|lowering|decrease|trim|slash|optimi[sz]e"
         r"|minimi[sz]e|shrink|bring down|too much|too high)\b", 1),
        (r"\b(?:prompt caching|cache|caching|cached|batch|batching|batch api)\b", 2),
        (r"\b(?:retry|retries|retried|errors?|failures?|failed)\b", 1),
        (r"\$\s?\d", 1),
        (r"\bprices?|pricing\b", 1.5),
    ),
    RequestCategory.REPORTING: _cues(
        (r"\b(?:report|reports|reporting|overview|breakdown|break down|dashboard|export|exported"
         r"|summary|summari[sz]e my|recap|digest|audit)\b", 3),
        (r"\bhow much (?:did|have|do|does|am|are|was|were|is) (?:i|we|my|our)\b"
         r"|\bwhat (?:did|have|do) (?:i|we) spend\b|\bwhere (?:is|does|did) (?:my|our|the) "
         r"(?:money|spend|budget)\b", 3),
        (r"\b(?:by|per) (?:model|feature|tag|day|week|month|provider|user|team)\b", 2),
        (r"\bwhich (?:features?|models?|teams?|users?|providers?|endpoints?|days?)\b.{0,30}?"
         r"\b(?:most|least|biggest|largest|highest|lowest)\b", 3.5),
        (r"\b(?:show|list|give|tell) (?:me|us)\b|\bshow\b", 1.5),
        (r"\b(?:trend|trends|over time|daily|weekly|monthly|chart|graph|table|totals?|top \d+"
         r"|top models?|markdown|csv|json)\b", 1.5),
    ),
}
_PRIORITY = (
    RequestCategory.MODEL_SELECTION, RequestCategory.LATENCY, RequestCategory.CAPACITY,
    RequestCategory.COST, RequestCategory.REPORTING,
)
_MIN_SCORE = 2.0

_LLM_DOMAIN = re.compile(
    r"\b(?:llms?|ai|genai|gen ai|models?|tokens?|prompts?|completions?|inference|apis?|endpoints?"
    r"|providers?|embeddings?|chatbots?|agents?|rag|workloads?|apex|gpt\S*|claude|gemini|llama"
    r"|mistral|openai|anthropic|bedrock|vertex|litellm|langfuse|helicone|cach\w*|batch\w*"
    r"|latency|ttft|throughput|rate limits?)\b"
)
_USAGE_WORDS = re.compile(
    r"\b(?:usage|requests|calls|traffic|features?|responses?|spend|spending|costs?|bills?"
    r"|budget)\b"
)
_OFF_TOPIC = re.compile(
    r"\b(?:weather|forecast for|recipe|cook\w*|bake|baking|poem|poetry|joke|song|lyrics|movie"
    r"|film|football|soccer|basketball|world cup|president|election|capital of|flights?|hotels?"
    r"|vacation|holiday|horoscope|homework|essay|dating|girlfriend|boyfriend|bitcoin|crypto"
    r"|stock price|car|cars|rent|mortgage|groceries|restaurant|translate (?:this|the following)"
    r"|story|novel|birthday|pizza|coffee|wine|dog|cat)s?\b"
)
_GREETING = re.compile(
    r"^(?:hi|hello|hey|help|thanks|thank you|good (?:morning|afternoon|evening))\b|"
    r"\bwhat can you do\b|\bhow do(?:es)? (?:this|you|apex) work\b|\bget started\b"
)
_FOLLOW_UP = re.compile(
    r"^(?:and|also|plus|but|then|so|ok(?:ay)?|now|what about|how about|only|just|same|instead"
    r"|excluding|without|except|what if)\b"
)
_MAX_FOLLOW_UP_WORDS = 12
_MAX_HISTORY = 8


def _scores(text: str) -> tuple[dict[RequestCategory, float], list[str]]:
    scores: dict[RequestCategory, float] = {}
    signals: list[str] = []
    for category, cues in _CUES.items():
        total = 0.0
        for pattern, weight in cues:
            match = pattern.search(text)
            if match:
                total += weight
                signals.append(match.group(0))
        scores[category] = total
    return scores, signals


def _boost_from_entities(scores: dict[RequestCategory, float], entities: RequestEntities) -> None:
    """Entities are cues too: two models compared, a cost target, a latency goal."""
    if len(entities.models) >= 2:
        scores[RequestCategory.MODEL_SELECTION] += 2
    elif entities.models and scores[RequestCategory.MODEL_SELECTION] > 0:
        scores[RequestCategory.MODEL_SELECTION] += 1
    for target in entities.targets:
        metric = target.metric or "cost"
        category = RequestCategory.LATENCY if metric == "latency" else RequestCategory.COST
        scores[category] += 1
    if entities.budgets:
        scores[RequestCategory.COST] += 1
    if entities.percentiles or entities.latency_target_ms is not None:
        scores[RequestCategory.LATENCY] += 1


def _rank(scores: dict[RequestCategory, float]) -> tuple[RequestCategory, float, float]:
    ordered = sorted(_PRIORITY, key=lambda category: (-scores[category], _PRIORITY.index(category)))
    return ordered[0], scores[ordered[0]], scores[ordered[1]]


def _classify_one(text: str) -> tuple[RequestClassification, bool]:
    """The classification of one message, and whether it is plainly about something else."""
    screened = screen(text)
    body = screened.text
    entities = extract_entities(body)
    scores, signals = _scores(body)
    _boost_from_entities(scores, entities)
    best, top, second = _rank(scores)
    llm_domain = bool(_LLM_DOMAIN.search(body)) or bool(
        entities.models or entities.providers or entities.features)
    off_cue = bool(_OFF_TOPIC.search(body))
    off_domain = off_cue and not llm_domain
    on_domain = llm_domain or bool(_USAGE_WORDS.search(body))
    if top >= _MIN_SCORE and not off_domain:
        confidence = min(0.97, 0.55 + 0.05 * top + 0.08 * (top - second))
        return RequestClassification(category=best, confidence=round(confidence, 2),
                                     entities=entities, flags=list(screened.flags),
                                     signals=signals[:20]), False
    if body and not off_cue and (on_domain or _GREETING.search(body)):
        return RequestClassification(category=RequestCategory.GENERAL, confidence=0.6,
                                     entities=entities, flags=list(screened.flags),
                                     signals=signals[:20]), False
    return RequestClassification(category=RequestCategory.OFF_TOPIC, confidence=0.9,
                                 flags=list(screened.flags)), off_cue


def _looks_like_follow_up(text: str, result: RequestClassification) -> bool:
    words = screen(text).text.split()
    if not words or len(words) > _MAX_FOLLOW_UP_WORDS:
        return False
    if _FOLLOW_UP.search(" ".join(words)):
        return True
    has_entities = result.entities != RequestEntities()
    return has_entities and result.category in {RequestCategory.GENERAL, RequestCategory.OFF_TOPIC}


def classify_request(text: str, history: Sequence[str] = ()) -> RequestClassification:
    """Classify `text`; `history` holds the thread's earlier user messages, oldest first."""
    result, off_domain = _classify_one(text)
    history = history[-_MAX_HISTORY:]
    if not history or off_domain or not _looks_like_follow_up(text, result):
        return result
    earlier = classify_request(history[-1], history[:-1])
    if earlier.category is RequestCategory.OFF_TOPIC:
        return result
    inherits = result.category in {RequestCategory.GENERAL, RequestCategory.OFF_TOPIC}
    return RequestClassification(
        category=earlier.category if inherits else result.category,
        confidence=earlier.confidence if inherits else result.confidence,
        entities=result.entities.merged_over(earlier.entities),
        flags=result.flags,
        follow_up=True,
        signals=result.signals,
    )
