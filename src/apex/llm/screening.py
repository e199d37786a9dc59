"""Normalise a user's text and set aside what tries to instruct the model instead of asking it.

The built-in engine only ever classifies and words prose, so injected text cannot make it run a
tool or read another user's data; screening makes sure it cannot even steer the classification.
Markup is stripped; from the first instruction aimed at the model to the end of its sentence the
text is dropped, and so is every clause that asks for someone else's data, before any rule looks
at the text (in English, German and French). Both are flagged so the caller can say they were
ignored. What is kept keeps its wording, so "between March 1 and March 9" or "$5,000" reach the
rules whole.
All patterns are bounded, so a hostile text costs linear time.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from apex.llm.plan import ClassificationFlag

MAX_ANALYSED_CHARS = 20_000

_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
    }
)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+")
# a comma between digits ("$5,000", "12,5 %") groups or separates digits; it ends no clause
_CLAUSE_BREAK = re.compile(
    r"(\s*(?:(?<!\d)[,:;]|[,:;](?!\d)|\b(?:and|also|then|plus|but|und|sowie|aber|dann|auch"
    r"|et|mais|puis|aussi)\b)\s*)"
)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_MARKUP = re.compile(r"<\s*/?\s*[a-z!][^<>]{0,200}>")
_TEMPLATE_MARKER = re.compile(r"<\|[^<>|\n]{0,40}\|>|\[/?inst\]|###\s*\w+")
_ACTIVE_MARKUP = re.compile(r"<\s*(?:script|iframe|object|embed|svg|img|style|link|meta)\b")

_INJECTION = re.compile(
    "|".join(
        (
            r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,40}?\b(?:instructions?|prompts?"
            r"|rules|guidelines|directions|guardrails|restrictions|polic(?:y|ies)|context"
            r"|everything)\b",
            r"\b(?:you are now|you're now|from now on,? you|act as|pretend (?:to be|you are)"
            r"|roleplay as|new persona|jailbreak|dan mode|developer mode|god mode|admin mode"
            r"|sudo mode|unrestricted mode)\b",
            r"\b(?:reveal|print|show|repeat|output|dump|leak|tell me|what(?:'s| is| are))\b.{0,30}?"
            r"\b(?:system prompt|system message|hidden prompt|initial prompt)\b"
            r"|\byour (?:system prompt|system message|instructions|rules)\b",
            r"<\|?\s*(?:im_start|im_end|system|endoftext)\s*\|?>|\[/?inst\]"
            r"|###\s*(?:system|instruction)",
            r"^\s*(?:system|assistant|developer)\s*:",
            r"\b(?:new|updated|real|actual|additional) instructions?\s*:",
            r"\b(?:classify|categori[sz]e|label|mark|treat|tag) (?:this|it|me"
            r"|the (?:request|message|query)|my (?:request|message))\b.{0,30}?\b(?:as|into)\b",
            r"\b(?:set|change|force|output|return|respond with)\b.{0,20}?\b(?:category|classification"
            r"|json|tenant|user_?id|tenant_?id)\b",
            r"\b(?:execute|run|call|invoke)\b.{0,20}?\b(?:tools?|functions?|sql|quer(?:y|ies)"
            r"|commands?|shell|code)\b",
            r"\b(?:drop|truncate)\s+(?:table|database)\b|\bdelete\s+from\b|\binsert\s+into\b"
            r"|\bunion\s+(?:all\s+)?select\b|\bselect\s+\*\s+from\b",
            r"javascript:",
            r"\b(?:ignorier\w*|vergiss|vergessen sie|missacht\w*|umgeh\w*)\b.{0,40}?\b(?:anweisung\w*"
            r"|instruktion\w*|befehle|regeln|vorgaben|richtlinien|prompts?|alles)\b",
            r"\b(?:ignore[rz]?|oublie[rz]?|contourne[rz]?)\b.{0,40}?\b(?:instructions|consignes"
            r"|règles|directives|tout)\b",
            r"\b(?:du bist jetzt|ab jetzt bist du|tu es maintenant|tu es désormais|agis comme"
            r"|verhalte dich wie)\b",
            r"\b(?:system-?prompt|prompt système|deine anweisungen|tes instructions"
            r"|vos instructions)\b",
            r"\b(?:neue|nouvelles) (?:anweisungen|instructions)\s*:",
        )
    ),
    re.IGNORECASE | re.MULTILINE,
)

_OTHER_USERS = re.compile(
    "|".join(
        (
            r"\b(?:other|another|all other|every other)\s+(?:users?|tenants?|accounts?|customers?"
            r"|teams?|organi[sz]ations?|orgs?|people|companies|compan(?:y|ies)'s)\b",
            r"\b(?:all|every|each|any)\s+(?:users?|tenants?|accounts?|organi[sz]ations?|orgs?)\b",
            r"\b(?:someone|somebody|everyone|everybody|anyone|anybody)\s*(?:else)?'s\b",
            r"\b(?:someone|somebody) else\b|\bother people'?s?\b",
            r"\b(?:tenant|user|account|org)[ _-]?id\b|\btenant\s*[#=:]",
            r"\b(?:users?|tenants?|accounts?)\s+#?(?:\d[\w-]*|[0-9a-f]{5,})\b",
            r"\bimpersonat\w*|\bon behalf of\b"
            r"|\bas (?:the |an )?(?:admin|administrator|root|superuser)\b",
            r"\b(?:whole|entire) (?:database|ledger|platform)\b",
            r"\b(?:andere[rnms]?|fremde[rnms]?)\s+(?:nutzer|benutzer|kunden|mandanten|konten|accounts"
            r"|user|teams|firmen|organisationen)\w*",
            r"\b(?:alle[rn]?|sämtliche[rn]?|jede[rnms]?)\s+(?:nutzer|benutzer|mandanten|konten"
            r"|accounts|user)\w*",
            r"\b(?:autres?|tous les|toutes les|chaque)\s+(?:utilisateurs?|clients?|comptes?"
            r"|locataires?|organisations?)\b",
        )
    ),
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ScreenedText:
    """`text` is what the rules may read; `flags` says what was set aside and why."""

    text: str
    flags: tuple[ClassificationFlag, ...]


def normalize(text: str) -> str:
    """NFKC, no invisible format characters, plain quotes and dashes, lower case, tidy spaces."""
    text = unicodedata.normalize("NFKC", text[: MAX_ANALYSED_CHARS * 2])
    if not text.isascii():  # format characters (zero-width joiners...) are never ASCII
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = text.translate(_QUOTES).lower()
    return _SPACES.sub(" ", text)[:MAX_ANALYSED_CHARS].strip()


def _without_other_users(sentence: str) -> tuple[str, bool]:
    """The sentence without its clauses that reach for other users' data, and whether it had any.

    Each kept clause keeps the separator before it, so the sentence reads as written."""
    if not _OTHER_USERS.search(sentence):
        return sentence.strip(), False
    pieces = _CLAUSE_BREAK.split(sentence)
    kept: list[str] = []
    dropped = False
    for position in range(0, len(pieces), 2):
        clause = pieces[position]
        if _OTHER_USERS.search(clause):
            dropped = True
        elif clause.strip():
            separator = pieces[position - 1] if position and kept else ""
            kept.append(separator + clause)
    return "".join(kept).strip(), dropped


def screen(text: str) -> ScreenedText:
    """Drop the sentences that instruct the model or reach for other users' data."""
    kept: list[str] = []
    flags: set[ClassificationFlag] = set()
    text = normalize(text)
    if _ACTIVE_MARKUP.search(text):
        flags.add(ClassificationFlag.PROMPT_INJECTION)
    text = _TEMPLATE_MARKER.sub(lambda match: f"\n{match.group(0)}\n", _MARKUP.sub(" ", text))
    for sentence in _SENTENCE_BREAK.split(text):
        injection = _INJECTION.search(sentence)
        if injection:
            flags.add(ClassificationFlag.PROMPT_INJECTION)
            sentence = sentence[: injection.start()]
        sentence, reaches_others = _without_other_users(sentence)
        if reaches_others:
            flags.add(ClassificationFlag.OTHER_USERS_DATA)
        if sentence:
            kept.append(sentence)
    ordered = tuple(flag for flag in ClassificationFlag if flag in flags)
    return ScreenedText(text="\n".join(kept), flags=ordered)
