"""Read the things a request is about: models, providers, features, targets, budgets, latency goals.

Input is normalised, screened text (see `screening`), in English, German or French. Every
extractor is a bounded pattern, and everything it returns is built from the matched characters
only, so nothing but names, numbers and short quotes of the user's wording leaves here.
A model is anything that looks like an id of a known family with any version or suffix
("gpt-7-ultra"): whether it exists is for the caller to check against its rows and the catalog.
"""

from __future__ import annotations

import re
from itertools import islice

from apex.llm.periods import extract_period
from apex.llm.plan import Dimension, ReductionTarget, RequestEntities, SpendBudget

# words a model id may carry after its version; with a space between, only the unmistakable ones
_MODEL_WORDS = (
    "turbo|mini|nano|micro|tiny|small|medium|large|pro|max|plus|ultra|lite|flash|instant|opus"
    "|sonnet|haiku|preview|latest|instruct|vision|coder|nemo"
)
_HYPHENATED_MODEL_WORDS = (
    _MODEL_WORDS + "|exp|experimental|chat|audio|realtime|search|codex|reasoner|reasoning"
    "|thinking|high|low|fast|base|beta|alpha|omni|heavy|versatile|deep-research|oss"
)
# words that follow a model name in a compound ("GPT-4o-Kosten", "Mistral-Aufrufe") without being
# part of it; any other short word after a hyphen is taken as a variant ("claude-9-mega")
_NOT_MODEL_WORDS = (
    r"kosten|aufrufe?|anfragen?|nutzung|ausgaben|latenz\w*|fehler\w*|rechnung\w*|preis\w*"
    r"|modell\w*|anbieter|antworten|nutzer|kunden|wechsel|umstieg|einsatz|qualität|calls?|costs?"
    r"|requests?|usage|spend\w*|pricing|prices?|bills?|latency|latencies|errors?|failures?"
    r"|traffic|tokens?|based|powered|driven|only|like|style|level|tier|family|models?|apis?"
    r"|endpoints?|responses?|answers?|quality|appels?|coûts?|requêtes?|utilisation|tarifs?"
    r"|réponses?"
)
_MODEL_PART = (
    rf"(?:-(?:{_HYPHENATED_MODEL_WORDS}|\d+x\d+b|\d+(?:\.\d+)?[a-z]?|v\d+(?:\.\d+)?"
    rf"|(?!(?:{_NOT_MODEL_WORDS})\b)[a-z][a-z0-9]{{1,11}})\b"
    rf"| (?:{_MODEL_WORDS}|\d+x\d+b|\d+(?:\.\d+)?b|\d(?:\.\d)?(?![\d%]|[.,]\d))\b)"
)
_MODEL = re.compile(
    "|".join(
        (
            rf"\bgpt[- ]?(?:\d+(?:\.\d+)?o?|oss)\b{_MODEL_PART}*",
            r"\bo[1-9](?:-(?:mini|pro|preview|high|low|deep-research))*\b",
            rf"\bclaude{_MODEL_PART}+",
            r"\b(?:opus|sonnet|haiku)[- ]\d(?:[.-]\d)?\b",
            rf"\bgemini{_MODEL_PART}+",
            rf"\b(?:meta-)?llama[- ]?\d+(?:\.\d+)?\b{_MODEL_PART}*",
            rf"\b(?:mistral|mixtral|ministral){_MODEL_PART}+",
            rf"\b(?:codestral|devstral|magistral|pixtral)\b{_MODEL_PART}*",
            rf"\bdeepseek[- ](?:v\d+(?:\.\d+)?|r\d|chat|coder|reasoner)\b{_MODEL_PART}*",
            rf"\bqwen[- ]?\d+(?:\.\d+)?\b{_MODEL_PART}*",
            rf"\bgrok[- ]?\d+(?:\.\d+)?\b{_MODEL_PART}*",
            rf"\bphi[- ]?\d+(?:\.\d+)?\b{_MODEL_PART}*",
            r"\bcommand[- ](?:r|a)(?:\+|[- ]plus)?",
            r"\btext-embedding-[a-z0-9-]+|\bembed-(?:english|multilingual)-v\d(?:\.\d)?",
            # a family on its own ("compare gpt-4o and claude"): triage matches it to the family's
            # models in the caller's rows
            r"\b(?:claude|gemini|llama|qwen|grok|deepseek)\b(?![- ]?\d)",
        )
    )
)
# "switch X to Y", "from X to Y", "replace X with Y", "von X auf Y", "X durch Y ersetzen",
# "passer de X à Y": a model right after such a word, in a clause about moving traffic
_MOVE = re.compile(
    r"\b(?:switch\w*|mov(?:e|es|ed|ing)|migrat\w*|swap\w*|replac\w*|rout(?:e|es|ed|ing)"
    r"|downgrad\w*|upgrad\w*|chang(?:e|es|ed|ing)|go(?:es|ing)? (?:to|with)|from|wechsel\w*"
    r"|gewechselt|umstell\w*|umgestellt|umstieg|umsteig\w*|umgestiegen|umzieh\w*|umgezogen"
    r"|migrier\w*|ersetz\w*|tausch\w*|passer|passant|remplac\w*|migrer)\b"
)
_TOWARDS = re.compile(
    r"(?:\b(?:to|onto|into|with|zu|zum|auf|nach|durch|mit|vers|par)|\bà|->|→)\s+"
    r"(?:(?:the|a|an|das|den|die|le|la)\s+)?$"
)
_MOVE_WINDOW = 120
_MAX_MENTIONS = 60
_FOR = re.compile(r"\bfor\s+$")
_SWAP = re.compile(r"\b(?:swap\w*|trad(?:e|es|ed|ing))\b")
# "Y instead of X", "Y good enough to replace X", "Y statt X", "Y au lieu de X": Y is the target
_TARGET_FIRST = re.compile(
    r"^\W*(?:instead of|rather than|in place of|statt|anstatt|anstelle von|au lieu de"
    r"|à la place de)\W*$|^[^,;:]*\b(?:replace|replacing|ersetzen|remplacer)\s+$"
)

_PROVIDERS = (
    (re.compile(r"\bazure(?: openai| ai)?\b"), "azure.ai.openai"),
    (re.compile(r"(?<!azure )\bopen ?ai\b"), "openai"),
    (re.compile(r"\banthropic\b"), "anthropic"),
    (re.compile(r"\b(?:aws )?bedrock\b"), "aws.bedrock"),
    (re.compile(r"\bvertex(?: ai)?\b"), "gcp.vertex_ai"),
    (re.compile(r"\b(?:google ai studio|gemini api|google)\b"), "gcp.gemini"),
    (
        re.compile(rf"\bmistral\b(?![- ](?:{_MODEL_WORDS}|embed|\d))|\bla plateforme\b"),
        "mistral_ai",
    ),
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

# feature words in English, German and French; "eine Zusammenfassung" is a summary asked for,
# not the summarization feature
_KNOWN_FEATURES = (
    (
        re.compile(
            r"\bsummar(?:ies|i[sz](?:ation|ations|er|ers))\b"
            r"|(?<!eine )(?<!kurze )\bzusammenfassung(?:en)?\b|\brésumés\b"
        ),
        "summarization",
    ),
    (
        re.compile(
            r"\bclassif(?:ication|ications|ier|iers)\b|\bklassifi(?:zierung|kation)(?:en)?\b"
        ),
        "classification",
    ),
    (re.compile(r"\bextract(?:ion|ions|or|ors)\b|\bextraktion(?:en)?\b"), "extraction"),
    (re.compile(r"\btranslations?\b|\bübersetzung(?:en)?\b|\btraductions?\b"), "translation"),
    (re.compile(r"\bembeddings?\b|\beinbettungen\b|\bplongements?\b"), "embeddings"),
    (re.compile(r"\b(?:chat ?bots?|chat)\b"), "chat"),
    (re.compile(r"\b(?:rag|retrieval)\b"), "rag"),
    (re.compile(r"\bsemantic search|\bsearch\b|\bsuche\b|\brecherche\b"), "search"),
    (
        re.compile(
            r"\bcode (?:gen(?:eration)?|completion|review|assistant)s?\b|\bautocomplete\b"
            r"|\bcode-?generierung\b|\bgénération de code\b"
        ),
        "code_generation",
    ),
    (
        re.compile(
            r"\bcustomer support\b|\bsupport (?:bots?|tickets?|agents?|chat|assistants?)\b"
            r"|\bhelpdesk\b|\bkunden(?:support|service|dienst)\b|\bsupport client\b"
            r"|\bservice client\b"
        ),
        "support",
    ),
    (re.compile(r"\bmod[eé]ration\b"), "moderation"),
    (
        re.compile(
            r"\bsentiment(?: analysis)?\b|\b(?:stimmungs|sentiment)analyse\b"
            r"|\banalyse de sentiment\b"
        ),
        "sentiment",
    ),
    (re.compile(r"\btranscriptions?\b|\btranskription(?:en)?\b"), "transcription"),
    (re.compile(r"\bq&a\b|\bquestion answering\b"), "question_answering"),
    (re.compile(r"\bevals?\b|\bevaluation (?:jobs?|pipelines?|runs?)\b|\bgrading\b"), "evaluation"),
    (re.compile(r"\btagging\b|\bverschlagwortung\b"), "tagging"),
)
_NAMED_FEATURE = re.compile(
    r"\b(?:feature|tag|workload|use[- ]case|endpoint|pipeline|job|funktion|fonctionnalité)s?"
    r"\s*(?:[=:]\s*|named\s+|called\s+|namens\s+|appelée?\s+)?[\"'`]([a-z0-9][a-z0-9_.\-]{1,40})"
    r"[\"'`]"
    r"|\b(?:feature|tag)\s*[=:]\s*([a-z0-9][a-z0-9_.\-]{1,40})"
    r"|\bthe\s+[\"'`]?([a-z][a-z0-9_\-]{1,40})[\"'`]?\s+(?:feature|workload|endpoint|pipeline"
    r"|use case|service)\b"
)
_NOT_FEATURE_NAMES = frozenset(
    {
        "whole",
        "entire",
        "same",
        "new",
        "this",
        "that",
        "each",
        "every",
        "other",
        "main",
        "my",
        "our",
        "which",
        "what",
        "one",
        "first",
        "last",
        "most",
        "least",
        "expensive",
        "cheap",
        "cheapest",
        "slow",
        "slowest",
        "fast",
        "top",
        "biggest",
        "largest",
        "a",
        "an",
        "any",
        "all",
        "their",
    }
)

# what a breakdown groups by: "by model", "which feature", "pro Anbieter", "par fournisseur"
_DIMENSION_WORDS: dict[str, Dimension] = {
    "model": "model",
    "models": "model",
    "llm": "model",
    "llms": "model",
    "modell": "model",
    "modelle": "model",
    "modellen": "model",
    "modèle": "model",
    "modèles": "model",
    "feature": "feature",
    "features": "feature",
    "use case": "feature",
    "use cases": "feature",
    "tag": "feature",
    "tags": "feature",
    "workload": "feature",
    "workloads": "feature",
    "funktion": "feature",
    "funktionen": "feature",
    "fonctionnalité": "feature",
    "fonctionnalités": "feature",
    "provider": "provider",
    "providers": "provider",
    "vendor": "provider",
    "vendors": "provider",
    "anbieter": "provider",
    "anbietern": "provider",
    "fournisseur": "provider",
    "fournisseurs": "provider",
}
_DIMENSION_WORD = "|".join(sorted(_DIMENSION_WORDS, key=len, reverse=True))
_DIMENSION = re.compile(
    rf"\b(?:by|per|for each|each|across|split by|grouped by|nach|pro|je|par|pour chaque)\s+"
    rf"(?:(?:the|dem|den|le|la)\s+)?({_DIMENSION_WORD})\b"
    rf"|\b(?:which|what|welche[rsmn]?|quel(?:le)?s?)\s+({_DIMENSION_WORD})\b"
    rf"|\b(?:top|costliest|most expensive|priciest|biggest|teuerste[nrs]?|teuersten)\s+"
    rf"({_DIMENSION_WORD})\b"
)

_PERCENT = re.compile(
    r"(\d{1,3}(?:[.,]\d{1,2})?)\s*(?:%|percent\b|per cent\b|pct\b|prozent\b|pour cent\b)"
    r"(?!\s*(?:of\b|accura|quality|precision|recall|success|uptime|confiden|sla\b|der\b|des\b"
    r"|genauigkeit|qualität|de\b|d'|précision))"
    r"|\b(in half|by half|halve|by a third|by a quarter|by two thirds|halbieren|halbiert"
    r"|um die hälfte|um ein drittel|um ein viertel|de moitié|diviser par deux|d'un tiers"
    r"|d'un quart)\b"
)
_FRACTIONS = {
    "in half": 50.0,
    "by half": 50.0,
    "halve": 50.0,
    "by a third": 100.0 / 3.0,
    "by a quarter": 25.0,
    "by two thirds": 200.0 / 3.0,
    "halbieren": 50.0,
    "halbiert": 50.0,
    "um die hälfte": 50.0,
    "um ein drittel": 100.0 / 3.0,
    "um ein viertel": 25.0,
    "de moitié": 50.0,
    "diviser par deux": 50.0,
    "d'un tiers": 100.0 / 3.0,
    "d'un quart": 25.0,
}
_METRICS = (
    (
        "latency",
        re.compile(
            r"latenc|slow|fast|speed|p\d\d|response time|ttft|latenz|langsam"
            r"|schnell|antwortzeit|latence|\blent|rapide|temps de réponse"
        ),
    ),
    ("tokens", re.compile(r"token")),
    ("errors", re.compile(r"error|fail|retr|fehler|erreur|échec")),
    (
        "cost",
        re.compile(
            r"cost|spend|bill|cheap|sav|money|price|expens|budget|\$|kosten|ausgaben"
            r"|rechnung|\bspar|einspar|senk|günstig|teuer|billig|coût|dépense|factur"
            r"|économ|\bcher"
        ),
    ),
)

# "5,000", "5.000" (German thousands), "1.234,56", "5 000", "1.2", "12,5"
_NUMBER = r"\d{1,3}(?:[., ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?"
_SCALE = r"k|m|thousand|million|tsd|tausend|mio|millionen"
_MONEY = re.compile(
    rf"(?:\$|usd\s?)\s?({_NUMBER})\s*({_SCALE})?\b"
    rf"|\b({_NUMBER})\s*({_SCALE})?\s*(?:\$|usd\b|us-dollars?\b|dollars?\b)"
    rf"|\b({_NUMBER})\s?(k|tsd)\b"
)
_THOUSANDS_ONLY = re.compile(r"\d{1,3}(?:[.,]\d{3})+")
_MONEY_PERIOD = re.compile(
    r"\s*(?:/|per|a|an|each|every|pro|je|im|in|par)\s*(day|week|month|mo|year|yr|annum|tag"
    r"|woche|monat|jahr|jour|semaine|mois|an|année)\b"
    r"|\s*(daily|weekly|monthly|yearly|annually|täglich|wöchentlich|monatlich|jährlich"
    r"|quotidien(?:nement)?|hebdomadaire(?:ment)?|mensuel(?:lement)?|annuel(?:lement)?)\b"
)
_BUDGET_CUE = re.compile(
    r"\b(?:budget|cap|capped|limit|ceiling|under|below|within|at most|no more than|max(?:imum)?"
    r"|less than|target|afford|allowance|down to|get (?:it |this |costs? |spend )?to"
    r"|bring (?:it |this |costs? |spend )?(?:down )?to|keep"
    r"|obergrenze|grenze|deckel|höchstens|maximal|unter|unterhalb|nicht mehr als|weniger als"
    r"|leisten|ziel|plafond|limite|sous|moins de|au plus|pas plus de)\b"
)
_BUDGET_WORD = re.compile(r"\b(?:budget|cap|obergrenze|plafond|limite?)\b")
# asking for a budget to be made ("set a $2,000 monthly budget"), not checking against one
_SET_UP = re.compile(
    r"\b(?:set(?: up)?|create|add|make|configure|establish|alert me|notify me|warn me"
    r"|einrichten|richte|anlegen|lege|erstelle|setze|créer|crée|créez|définir|définis|fixer"
    r"|fixe|mettre en place)\b"
)
_CURRENT_SPEND = re.compile(
    r"\b(?:spend|spending|spent|pay|paying|paid|costs?(?: us| me)?|bill(?: is)?|currently|now at"
    r"|burn(?:ing)?|averag\w*|about|around|roughly|saves?|saving|savings"
    r"|geben(?: wir| ich)?|ausgeben|ausgegeben|zahlen|bezahlen|zahlten|kostet(?: uns)?"
    r"|kosten(?: uns)?|derzeit|aktuell|momentan|etwa|ungefähr|rund|circa|ca|sparen|spart"
    r"|dépensons|dépensé|payons|coûte|actuellement|environ|économiser)\W*$"
)
_MULTIPLIERS = {
    "k": 1e3,
    "thousand": 1e3,
    "tsd": 1e3,
    "tausend": 1e3,
    "m": 1e6,
    "million": 1e6,
    "mio": 1e6,
    "millionen": 1e6,
}
_PERIOD_WORDS = {
    "day": "day",
    "daily": "day",
    "week": "week",
    "weekly": "week",
    "month": "month",
    "mo": "month",
    "monthly": "month",
    "year": "year",
    "yr": "year",
    "annum": "year",
    "yearly": "year",
    "annually": "year",
    "tag": "day",
    "täglich": "day",
    "woche": "week",
    "wöchentlich": "week",
    "monat": "month",
    "monatlich": "month",
    "jahr": "year",
    "jährlich": "year",
    "jour": "day",
    "quotidien": "day",
    "quotidiennement": "day",
    "semaine": "week",
    "hebdomadaire": "week",
    "hebdomadairement": "week",
    "mois": "month",
    "mensuel": "month",
    "mensuellement": "month",
    "an": "year",
    "année": "year",
    "annuel": "year",
    "annuellement": "year",
}

_PERCENTILE = re.compile(
    r"\bp(99\.9|50|75|90|95|99)\b"
    r"|\b(50|75|90|95|99)(?:th|\.|e|ème)?\s*(?:percentile|perzentil|centile)\b"
)
_LATENCY_TARGET = re.compile(
    r"\b(?:under|below|less than|within|at most|no more than|max(?:imum)?|down to|to|unter"
    r"|unterhalb|weniger als|höchstens|maximal|auf|sous|moins de|au plus|en dessous de)\s*"
    r"(?:<\s*)?(\d+(?:[.,]\d+)?)\s*(ms|milliseconds?|millisekunden|millisecondes?|s|secs?"
    r"|seconds?|sek|sekunden|secondes?)\b"
)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))[:20]


def _model_name(mention: str) -> str:
    """The id a mention stands for: "GPT 4o" -> "gpt-4o", "sonnet 4.5" -> "claude-sonnet-4.5"."""
    name = re.sub(r"\s+", "-", mention.strip())
    name = re.sub(r"^gpt(?=\d)", "gpt-", name)
    return "claude-" + name if re.fullmatch(r"(?:opus|sonnet|haiku)-.*", name) else name


def extract_models(text: str) -> list[str]:
    """Every model the text names, in order, whether the question moves traffic to it or not."""
    return _unique([_model_name(match.group(0)) for match in _MODEL.finditer(text)])


def extract_model_moves(text: str) -> tuple[list[str], list[str]]:
    """The models named, split into those the question is about and those it would move to.

    "Switch summarization from claude-sonnet-4 to claude-haiku-4-5" is about claude-sonnet-4 and
    moves to claude-haiku-4-5; a target is never also in the first list. Only the sentence
    around a mention (at most `_MOVE_WINDOW` characters each side) can make it a target.
    """
    mentions = list(islice(_MODEL.finditer(text), _MAX_MENTIONS))
    targets: set[int] = set()
    for index, mention in enumerate(mentions):
        start, end = mention.span()
        line_start = max(text.rfind("\n", 0, start) + 1, start - _MOVE_WINDOW)
        line_end = text.find("\n", end, end + _MOVE_WINDOW)
        previous_end = mentions[index - 1].end() if index else 0
        before = text[max(line_start, previous_end) : start]
        if index and previous_end > line_start and _TARGET_FIRST.search(before):
            targets.add(index - 1)
            continue
        line = text[line_start : end + _MOVE_WINDOW if line_end < 0 else line_end]
        if (_TOWARDS.search(before) and _MOVE.search(line)) or (
            _FOR.search(before) and _SWAP.search(line)
        ):
            targets.add(index)
    target_names = _unique([_model_name(mentions[i].group(0)) for i in sorted(targets)])
    models = [
        _model_name(mention.group(0))
        for index, mention in enumerate(mentions)
        if index not in targets
    ]
    return _unique([name for name in models if name not in target_names]), target_names


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


def extract_dimension(text: str) -> Dimension | None:
    """What the text asks to group by ("feature", "model" or "provider"), if it says."""
    match = _DIMENSION.search(text)
    if match is None:
        return None
    word = next(group for group in match.groups() if group)
    return _DIMENSION_WORDS[word]


def _metric_near(text: str, position: int) -> str | None:
    window = text[max(0, position - 40) : position + 20]
    for metric, pattern in _METRICS:
        if pattern.search(window):
            return metric
    return None


def extract_targets(text: str) -> list[ReductionTarget]:
    targets: list[ReductionTarget] = []
    for match in _PERCENT.finditer(text):
        if match.group(1) is not None:
            percent = float(match.group(1).replace(",", "."))
        else:
            percent = _FRACTIONS[match.group(2)]
        if 0 < percent <= 100:
            targets.append(
                ReductionTarget(
                    percent=round(percent, 2),
                    text=match.group(0),
                    metric=_metric_near(text, match.start()),
                )
            )
    return targets[:20]


def parse_number(text: str) -> float:
    """A number written the English, German or French way: "5,000", "5.000", "1.234,56", "12,5".

    A lone "," or "." followed by exactly three digits groups thousands; otherwise the last
    separator is the decimal one.
    """
    digits = re.sub(r"\s", "", text)
    if _THOUSANDS_ONLY.fullmatch(digits):
        return float(re.sub(r"[.,]", "", digits))
    decimal = max(digits.rfind(","), digits.rfind("."))
    if decimal < 0:
        return float(digits)
    whole = re.sub(r"[.,]", "", digits[:decimal])
    return float(f"{whole}.{digits[decimal + 1 :]}")


def extract_budgets(text: str) -> list[SpendBudget]:
    budgets: list[SpendBudget] = []
    setup = bool(_SET_UP.search(text))
    for match in _MONEY.finditer(text):
        digits = match.group(1) or match.group(3) or match.group(5)
        multiplier = match.group(2) or match.group(4) or match.group(6)
        amount = parse_number(digits) * _MULTIPLIERS.get(multiplier or "", 1.0)
        period_match = _MONEY_PERIOD.match(text, match.end())
        before = text[max(0, match.start() - 40) : match.start()]
        if _CURRENT_SPEND.search(before) or not 0 < amount <= 1e12:
            continue
        if period_match is None and not _BUDGET_CUE.search(before):
            continue
        if match.group(5) and period_match is None and not _BUDGET_WORD.search(before):
            continue
        per = None
        end = match.end()
        if period_match:
            per = _PERIOD_WORDS[period_match.group(1) or period_match.group(2)]
            end = period_match.end()
        budgets.append(
            SpendBudget(amount_usd=amount, per=per, text=text[match.start() : end], setup=setup)
        )
    return budgets[:20]


def extract_percentiles(text: str) -> list[float]:
    values = [float(match.group(1) or match.group(2)) for match in _PERCENTILE.finditer(text)]
    return list(dict.fromkeys(values))[:20]


def extract_latency_target_ms(text: str) -> float | None:
    for match in _LATENCY_TARGET.finditer(text):
        value, unit = float(match.group(1).replace(",", ".")), match.group(2)
        milliseconds = value if unit.startswith("m") else value * 1_000
        if 0 < milliseconds <= 3_600_000:
            return milliseconds
    return None


def extract_entities(text: str) -> RequestEntities:
    """Every entity of normalised, screened text."""
    models, target_models = extract_model_moves(text)
    return RequestEntities(
        models=models,
        target_models=target_models,
        providers=extract_providers(text),
        features=extract_features(text),
        period=extract_period(text),
        targets=extract_targets(text),
        budgets=extract_budgets(text),
        percentiles=extract_percentiles(text),
        latency_target_ms=extract_latency_target_ms(text),
        dimension=extract_dimension(text),
    )
