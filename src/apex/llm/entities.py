"""Read the things a request is about: models, providers, features, targets, budgets, latency goals.

Input is normalised, screened text (see `screening`). Every extractor is a bounded pattern, and
everything it returns is built from the matched characters only, so nothing but names, numbers
and short quotes of the user's wording leaves here.
"""

from __future__ import annotations

import re

from apex.llm.classification import ReductionTarget, RequestEntities, SpendBudget
from apex.llm.periods import extract_period

_MODEL = re.compile(
    "|".join((
        r"\bgpt[- ]?(?:3\.5|4\.1|4\.5|4o|4|5(?:\.\d)?|oss)(?:[- ](?:turbo|mini|nano|pro|preview"
        r"|instruct|chat|latest|\d{4}(?:-\d{2}-\d{2})?|\d+b))*",
        r"\bo[1345](?:-(?:mini|pro|preview|high|low))*\b",
        r"\bclaude(?:[- ](?:\d(?:[.-]\d)?|instant|opus|sonnet|haiku|latest|\d{8}))+",
        r"\b(?:opus|sonnet|haiku)[- ]\d(?:[.-]\d)?\b",
        r"\bgemini(?:[- ](?:\d(?:\.\d)?|pro|flash|ultra|lite|nano|exp|latest))+",
        r"\b(?:meta-)?llama[- ]?\d(?:\.\d)?(?:[- ](?:\d+b|instruct|chat|vision|scout|maverick))*",
        r"\b(?:mistral|mixtral|codestral|ministral|magistral)(?:[- ](?:large|medium|small|tiny"
        r"|nemo|\d+x\d+b|\d+b|latest|\d+(?:\.\d)?))+",
        r"\bdeepseek[- ](?:v\d(?:\.\d)?|r1|chat|coder|reasoner)\b",
        r"\bqwen[- ]?\d(?:\.\d)?(?:[- ](?:\d+b|max|plus|turbo|instruct|coder))*",
        r"\bcommand[- ]r(?:\+|[- ]plus)?",
        r"\bgrok[- ]?\d(?:[- ](?:mini|fast|beta))*",
        r"\btext-embedding-[a-z0-9-]+|\bembed-(?:english|multilingual)-v\d(?:\.\d)?",
    ))
)

_PROVIDERS = (
    (re.compile(r"\bazure(?: openai| ai)?\b"), "azure.ai.openai"),
    (re.compile(r"(?<!azure )\bopen ?ai\b"), "openai"),
    (re.compile(r"\banthropic\b"), "anthropic"),
    (re.compile(r"\b(?:aws )?bedrock\b"), "aws.bedrock"),
    (re.compile(r"\bvertex(?: ai)?\b"), "gcp.vertex_ai"),
    (re.compile(r"\b(?:google ai studio|gemini api|google)\b"), "gcp.gemini"),
    (re.compile(r"\bmistral(?: ai| api|'s api)\b|\bla plateforme\b"), "mistral_ai"),
    (re.compile(r"\bcohere\b"), "cohere"),
    (re.compile(r"\bgroq\b"), "groq"),
    (re.compile(r"\bdeepseek(?: api|'s api)\b"), "deepseek"),
    (re.compile(r"\b(?:x\.?ai)\b"), "x_ai"),
    (re.compile(r"\bperplexity\b"), "perplexity"),
    (re.compile(r"\btogether(?: ai|\.ai)\b"), "together_ai"),
    (re.compile(r"\bfireworks(?: ai)?\b"), "fireworks_ai"),
    (re.compile(r"\bopenrouter\b"), "openrouter"),
    (re.compile(r"\bollama\b"), "ollama"),
    (re.compile(r"\bvllm\b"), "vllm"),
    (re.compile(r"\bwatsonx\b"), "ibm.watsonx.ai"),
)

_KNOWN_FEATURES = (
    (re.compile(r"\bsummar(?:ies|i[sz](?:ation|ations|er|ers))\b"), "summarization"),
    (re.compile(r"\bclassif(?:ication|ications|ier|iers)\b"), "classification"),
    (re.compile(r"\bextract(?:ion|ions|or|ors)\b"), "extraction"),
    (re.compile(r"\btranslations?\b"), "translation"),
    (re.compile(r"\bembeddings?\b"), "embeddings"),
    (re.compile(r"\b(?:chat ?bots?|chat)\b"), "chat"),
    (re.compile(r"\b(?:rag|retrieval)\b"), "rag"),
    (re.compile(r"\bsemantic search|\bsearch\b"), "search"),
    (re.compile(r"\bcode (?:gen(?:eration)?|completion|review|assistant)s?\b|\bautocomplete\b"),
     "code_generation"),
    (re.compile(r"\bcustomer support\b|\bsupport (?:bots?|tickets?|agents?|chat|assistants?)\b"
                r"|\bhelpdesk\b"), "support"),
    (re.compile(r"\bmoderation\b"), "moderation"),
    (re.compile(r"\bsentiment(?: analysis)?\b"), "sentiment"),
    (re.compile(r"\btranscriptions?\b"), "transcription"),
    (re.compile(r"\bq&a\b|\bquestion answering\b"), "question_answering"),
    (re.compile(r"\bevals?\b|\bevaluation (?:jobs?|pipelines?|runs?)\b|\bgrading\b"), "evaluation"),
    (re.compile(r"\btagging\b"), "tagging"),
)
_NAMED_FEATURE = re.compile(
    r"\b(?:feature|tag|workload|use[- ]case|endpoint|pipeline|job)s?\s*(?:[=:]\s*|named\s+"
    r"|called\s+)?[\"'`]([a-z0-9][a-z0-9_.\-]{1,40})[\"'`]"
    r"|\b(?:feature|tag)\s*[=:]\s*([a-z0-9][a-z0-9_.\-]{1,40})"
    r"|\bthe\s+[\"'`]?([a-z][a-z0-9_\-]{1,40})[\"'`]?\s+(?:feature|workload|endpoint|pipeline"
    r"|use case|service)\b"
)
_NOT_FEATURE_NAMES = frozenset({
    "whole", "entire", "same", "new", "this", "that", "each", "every", "other", "main", "my", "our",
    "which", "what", "one", "first", "last", "most", "least", "expensive", "cheap", "cheapest",
    "slow", "slowest", "fast", "top", "biggest", "largest", "a", "an", "any", "all", "their",
})

_PERCENT = re.compile(
    r"(\d{1,3}(?:\.\d{1,2})?)\s*(?:%|percent\b|per cent\b|pct\b)"
    r"(?!\s*(?:of\b|accura|quality|precision|recall|success|uptime|confiden|sla\b))"
    r"|\b(?:in|by)\s+(half)\b|\b(halve)\b|\bby\s+(a third|a quarter|two thirds)\b"
)
_FRACTIONS = {"half": 50.0, "halve": 50.0, "a third": 100.0 / 3.0, "a quarter": 25.0,
              "two thirds": 200.0 / 3.0}
_METRICS = (
    ("latency", re.compile(r"latenc|slow|fast|speed|p\d\d|response time|ttft")),
    ("tokens", re.compile(r"token")),
    ("errors", re.compile(r"error|fail|retr")),
    ("cost", re.compile(r"cost|spend|bill|cheap|sav|money|price|expens|budget|\$")),
)

_MONEY = re.compile(
    r"(?:\$|usd\s?)\s?(\d[\d,]*(?:\.\d+)?)\s*(k|m|thousand|million)?\b"
    r"|\b(\d[\d,]*(?:\.\d+)?)\s*(k|m|thousand|million)?\s*(?:usd|dollars?)\b"
)
_MONEY_PERIOD = re.compile(
    r"\s*(?:/|per|a|an|each|every)\s*(day|week|month|mo|year|yr|annum)\b"
    r"|\s*(daily|weekly|monthly|yearly|annually)\b"
)
_BUDGET_CUE = re.compile(
    r"\b(?:budget|cap|capped|limit|ceiling|under|below|within|at most|no more than|max(?:imum)?"
    r"|less than|target|afford|allowance|down to|get (?:it |this |costs? |spend )?to"
    r"|bring (?:it |this |costs? |spend )?(?:down )?to|keep)\b"
)
_CURRENT_SPEND = re.compile(
    r"\b(?:spend|spending|spent|pay|paying|paid|costs?(?: us| me)?|bill(?: is)?|currently|now at"
    r"|burn(?:ing)?|averag\w*|about|around|roughly|saves?|saving|savings)\W*$"
)
_MULTIPLIERS = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6}
_PERIOD_WORDS = {"day": "day", "daily": "day", "week": "week", "weekly": "week", "month": "month",
                 "mo": "month", "monthly": "month", "year": "year", "yr": "year", "annum": "year",
                 "yearly": "year", "annually": "year"}

_PERCENTILE = re.compile(r"\bp(99\.9|50|75|90|95|99)\b|\b(50|75|90|95|99)(?:th)? percentile\b")
_LATENCY_TARGET = re.compile(
    r"\b(?:under|below|less than|within|at most|no more than|max(?:imum)?|down to|to)\s*(?:<\s*)?"
    r"(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?)\b"
)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))[:20]


def extract_models(text: str) -> list[str]:
    found: list[str] = []
    for match in _MODEL.finditer(text):
        name = re.sub(r"\s+", "-", match.group(0).strip())
        name = re.sub(r"^gpt(?=\d)", "gpt-", name)
        if re.fullmatch(r"(?:opus|sonnet|haiku)-.*", name):
            name = "claude-" + name
        found.append(name)
    return _unique(found)


def extract_providers(text: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for pattern, name in _PROVIDERS:
        match = pattern.search(text)
        if match:
            found.append((match.start(), name))
    return _unique([name for _, name in sorted(found)])


def extract_features(text: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for pattern, name in _KNOWN_FEATURES:
        match = pattern.search(text)
        if match:
            found.append((match.start(), name))
    for match in _NAMED_FEATURE.finditer(text):
        name = next(group for group in match.groups() if group)
        if name not in _NOT_FEATURE_NAMES:
            found.append((match.start(), name))
    return _unique([name for _, name in sorted(found)])


def _metric_near(text: str, position: int) -> str | None:
    window = text[max(0, position - 40): position + 20]
    for metric, pattern in _METRICS:
        if pattern.search(window):
            return metric
    return None


def extract_targets(text: str) -> list[ReductionTarget]:
    targets: list[ReductionTarget] = []
    for match in _PERCENT.finditer(text):
        if match.group(1) is not None:
            percent = float(match.group(1))
        else:
            percent = _FRACTIONS[next(group for group in match.groups()[1:] if group)]
        if 0 < percent <= 100:
            targets.append(ReductionTarget(percent=round(percent, 2), text=match.group(0),
                                           metric=_metric_near(text, match.start())))
    return targets[:20]


def extract_budgets(text: str) -> list[SpendBudget]:
    budgets: list[SpendBudget] = []
    for match in _MONEY.finditer(text):
        digits = match.group(1) or match.group(3)
        multiplier = match.group(2) or match.group(4)
        try:
            amount = float(digits.replace(",", "")) * _MULTIPLIERS.get(multiplier or "", 1.0)
        except ValueError:
            continue
        period_match = _MONEY_PERIOD.match(text, match.end())
        before = text[max(0, match.start() - 40): match.start()]
        if _CURRENT_SPEND.search(before) or not 0 < amount <= 1e12:
            continue
        if period_match is None and not _BUDGET_CUE.search(before):
            continue
        per = None
        end = match.end()
        if period_match:
            per = _PERIOD_WORDS[period_match.group(1) or period_match.group(2)]
            end = period_match.end()
        budgets.append(SpendBudget(amount_usd=amount, per=per,  # type: ignore[arg-type]
                                   text=text[match.start():end]))
    return budgets[:20]


def extract_percentiles(text: str) -> list[float]:
    values = [float(match.group(1) or match.group(2)) for match in _PERCENTILE.finditer(text)]
    return list(dict.fromkeys(values))[:20]


def extract_latency_target_ms(text: str) -> float | None:
    for match in _LATENCY_TARGET.finditer(text):
        value, unit = float(match.group(1)), match.group(2)
        milliseconds = value if unit.startswith("m") else value * 1_000
        if 0 < milliseconds <= 3_600_000:
            return milliseconds
    return None


def extract_entities(text: str) -> RequestEntities:
    """Every entity of normalised, screened text."""
    return RequestEntities(
        models=extract_models(text),
        providers=extract_providers(text),
        features=extract_features(text),
        period=extract_period(text),
        targets=extract_targets(text),
        budgets=extract_budgets(text),
        percentiles=extract_percentiles(text),
        latency_target_ms=extract_latency_target_ms(text),
    )
