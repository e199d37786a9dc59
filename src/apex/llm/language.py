"""Which language a question is written in (ISO 639-1), so the answer can be written in it too.

py3langid does the work: it is small, pure Python over numpy, ships its trained model inside the
wheel (no download, no network) and scores a sentence in about a tenth of a millisecond. It is
restricted to the few languages Apex expects, which makes it both faster and less prone to exotic
guesses. The identifier is loaded once, on first use (about a second), and shared.

Only words are shown to it: model names, numbers, money and code-like tokens ("gpt-4o-mini",
"$5k", "feature=search_v2") say nothing about the language and would pull the guess towards
whichever language their letters happen to resemble. Text too short for the statistics to mean
anything ("Hallo", "merci") is decided by function words instead, and with no evidence at all the
answer is English.
"""

from __future__ import annotations

import re
import threading
from typing import Protocol

DEFAULT_LANGUAGE = "en"
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")
_MIN_CONFIDENCE = 0.9
_MIN_WORDS = 3
_MIN_LETTERS = 15
_MAX_CHARS = 1_000

_TOKEN = re.compile(r"\S+")
_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
_EDGE_PUNCTUATION = "\"'()[]{}<>.,;:!?¿¡«»"
_CUE_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        (
            "the and is are was were what which why how much many did do does we our my you your "
            "of to for with on in this that last next week month hello hi hey thanks cost costs "
            "spend spent should would could can will please show me"
        ).split()
    ),
    "de": frozenset(
        (
            "der die das den dem des und ist sind war waren was welche welcher welches warum wie "
            "viel viele haben hat habe wir unser unsere unseren mein meine ich du sie es nicht "
            "für mit auf von zu im am bei nach vom zum zur letzte letzten letzter nächsten nächste "
            "diese diesen dieser woche monat jahr kosten kostet ausgegeben ausgaben hallo danke "
            "guten morgen tag abend bitte lohnt sich sollen sollten würde wäre passt fasse "
            "zusammen vergleiche schlagen fehl"
        ).split()
    ),
    "fr": frozenset(
        (
            "le la les un une des du de et est sont était quel quelle quels quelles pourquoi "
            "comment combien nous notre nos mon ma mes vous votre je pour avec sur dans ce cette "
            "ces au aux semaine mois année dernier dernière prochain coûts coût dépensé dépenses "
            "bonjour salut bonsoir merci faut-il devrions vaut"
        ).split()
    ),
}
_ACCENT_CUES = (("de", re.compile(r"[äöüß]")), ("fr", re.compile(r"[àâçèéêëîïôùûœ]")))


class _Identifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


_identifier: _Identifier | None = None
_identifier_lock = threading.Lock()


def _load() -> _Identifier:
    """The shared identifier, built on first use; later calls only read it."""
    global _identifier
    if _identifier is None:
        with _identifier_lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(list(LANGUAGES))
                _identifier = identifier
    return _identifier


def preload() -> None:
    """Load the identifier now (at start-up) rather than inside the first request."""
    _load()


def language_words(text: str) -> list[str]:
    """The words of `text`, leaving out every token that holds a digit, a symbol or code."""
    words: list[str] = []
    for token in _TOKEN.findall(text[: _MAX_CHARS * 4]):
        token = token.strip(_EDGE_PUNCTUATION)
        if _WORD.fullmatch(token):
            words.append(token.lower())
    return words


def _cue_language(words: list[str]) -> str | None:
    """The language whose function words (and letters) the text uses most; None on no evidence."""
    counts = {
        language: sum(word in cues for word in words) for language, cues in _CUE_WORDS.items()
    }
    joined = " ".join(words)
    for language, accents in _ACCENT_CUES:
        if accents.search(joined):
            counts[language] += 1
    best = max(counts, key=lambda language: (counts[language], language == DEFAULT_LANGUAGE))
    return best if counts[best] > 0 else None


def guess_language(text: str) -> str | None:
    """The ISO 639-1 code of `text`'s language, or None when the text gives no evidence of one."""
    words = language_words(text)
    if not words:
        return None
    if len(words) >= _MIN_WORDS and sum(map(len, words)) >= _MIN_LETTERS:
        language, confidence = _load().classify(" ".join(words)[:_MAX_CHARS])
        if confidence >= _MIN_CONFIDENCE:
            return str(language)
    return _cue_language(words)


def detect_language(text: str) -> str:
    """The ISO 639-1 code of `text`'s language, English when nothing says otherwise."""
    return guess_language(text) or DEFAULT_LANGUAGE
