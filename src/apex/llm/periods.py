"""Read the period a request names: "last 7 days", "letzte Woche", "le mois dernier", "Q3 2025"...

The result stays symbolic (a `RequestedPeriod`): relative periods are resolved later against
today's date, when the run starts. Forms are tried from the most explicit (two dates) to the
vaguest (a bare month name), and the first that matches wins. English, German and French wording
map onto the same symbolic periods, so the rest of Apex never sees the language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, timedelta

from apex.llm.plan import RequestedPeriod

_FULL_MONTHS = {
    # English
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    # German
    "januar": 1,
    "jänner": 1,
    "februar": 2,
    "märz": 3,
    "juni": 6,
    "juli": 7,
    "oktober": 10,
    "dezember": 12,
    "mai": 5,
    # French
    "janvier": 1,
    "février": 2,
    "mars": 3,
    "avril": 4,
    "juin": 6,
    "juillet": 7,
    "août": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "décembre": 12,
}
_MONTHS = {
    **_FULL_MONTHS,
    "may": 5,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
    "mär": 3,
    "okt": 10,
    "dez": 12,
    "janv": 1,
    "févr": 2,
    "avr": 4,
    "juil": 7,
    "déc": 12,
}
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fourteen": 14,
    "thirty": 30,
    "sixty": 60,
    "ninety": 90,
    "couple of": 2,
    "few": 3,
    "ein": 1,
    "eine": 1,
    "einen": 1,
    "zwei": 2,
    "drei": 3,
    "vier": 4,
    "fünf": 5,
    "sechs": 6,
    "sieben": 7,
    "acht": 8,
    "neun": 9,
    "zehn": 10,
    "zwölf": 12,
    "vierzehn": 14,
    "dreißig": 30,
    "sechzig": 60,
    "neunzig": 90,
    "deux": 2,
    "trois": 3,
    "quatre": 4,
    "cinq": 5,
    "sept": 7,
    "huit": 8,
    "neuf": 9,
    "dix": 10,
    "quinze": 15,
    "trente": 30,
    "soixante": 60,
}
_UNITS = {
    "hour": "hour",
    "day": "day",
    "week": "week",
    "month": "month",
    "quarter": "quarter",
    "year": "year",
    "stunde": "hour",
    "stunden": "hour",
    "tag": "day",
    "tage": "day",
    "tagen": "day",
    "woche": "week",
    "wochen": "week",
    "monat": "month",
    "monate": "month",
    "monaten": "month",
    "monats": "month",
    "quartal": "quarter",
    "quartale": "quarter",
    "quartalen": "quarter",
    "quartals": "quarter",
    "jahr": "year",
    "jahre": "year",
    "jahren": "year",
    "jahres": "year",
    "heure": "hour",
    "heures": "hour",
    "jour": "day",
    "jours": "day",
    "semaine": "week",
    "semaines": "week",
    "mois": "month",
    "trimestre": "quarter",
    "trimestres": "quarter",
    "an": "year",
    "ans": "year",
    "année": "year",
    "années": "year",
}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "quarter": 91, "year": 365}
_QUARTER_ORDINALS = {
    "premier": 1,
    "deuxième": 2,
    "second": 2,
    "troisième": 3,
    "quatrième": 4,
    "erste": 1,
    "ersten": 1,
    "zweite": 2,
    "zweiten": 2,
    "dritte": 3,
    "dritten": 3,
    "vierte": 4,
    "vierten": 4,
}


def _alternatives(words: Iterable[str]) -> str:
    """A regex alternation of `words`, longest first so no word stops at a shorter prefix."""
    return "|".join(sorted(words, key=len, reverse=True))


_ANY_MONTH = _alternatives(_MONTHS)
_BARE_MONTHS = _alternatives(_FULL_MONTHS)
_AMOUNT = rf"\d{{1,4}}|{_alternatives(_NUMBERS)}"
_EN_UNIT = r"(hour|day|week|month|quarter|year)s?"
_DE_UNIT = r"(stunden?|tag(?:e|en)?|wochen?|monat(?:e|en)?|quartal(?:e|en)?|jahr(?:e|en)?)"
_FR_UNIT = r"(heures?|jours?|semaines?|mois|trimestres?|années?|ans?)"
_DE_CALENDAR_UNIT = r"(woche|monats?|quartals?|jahr(?:es)?)"
_FR_CALENDAR_UNIT = r"(semaine|mois|trimestre|année|an)"
_ISO = r"(\d{4})-(\d{1,2})-(\d{1,2})"
_NAMED_DATE = rf"(?:({_ANY_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}}))"
_DATE = rf"(?:{_ISO}|{_NAMED_DATE})"

_RANGE = re.compile(
    rf"\b(?:between|from|zwischen|vom|von|entre|du)\s+{_DATE}\s+"
    rf"(?:and|to|until|till|through|-|und|bis(?: zum)?|zum|et|au|à)\s+{_DATE}"
)
_SINCE = re.compile(
    rf"\b(?:since|from|after|starting(?: on| from)?|seit|ab|nach dem|depuis le|depuis"
    rf"|à partir du|après le)\s+{_DATE}"
)
_UNTIL = re.compile(
    rf"\b(?:before|until|till|up to|bis(?: zum)?|vor dem|avant le|jusqu'au)"
    rf"\s+{_DATE}"
)
_SINCE_MONTH = re.compile(
    rf"\b(?:since|from|after|seit|ab|depuis)\s+(?:the (?:start|beginning) of\s+|anfang\s+"
    rf"|le début de\s+|début\s+)?({_ANY_MONTH})\b(?:\s+(\d{{4}}))?"
)
_LAST_N = re.compile(
    rf"\b(?:last|past|previous|prior|trailing|over the last|over the past)\s+({_AMOUNT})\s+"
    rf"{_EN_UNIT}\b"
    rf"|\b(?:letzte[nr]?|vergangene[nr]?|vorige[nr]?)\s+({_AMOUNT})\s+{_DE_UNIT}\b"
    rf"|\b({_AMOUNT})\s+(?:derniers|dernières|passés|passées)\s+{_FR_UNIT}\b"
    rf"|\b(?:derniers|dernières)\s+({_AMOUNT})\s+{_FR_UNIT}\b"
)
_LAST_UNIT = re.compile(
    r"\b(last|past|previous|prior)\s+(24 hours|day|week|month|quarter|year)\b"
    rf"|\b(?:letzte[nrs]?|vergangene[nrs]?|vorige[nrs]?|vorherige[nrs]?)\s+{_DE_CALENDAR_UNIT}\b"
    rf"|\b{_FR_CALENDAR_UNIT}\s+(?:dernier|dernière|passé|passée|précédent|précédente)\b"
)
_NEXT = re.compile(
    r"\b(?:next|coming|upcoming|following)\s+(week|month|quarter|year)\b"
    rf"|\b(?:nächste[nrs]?|kommende[nrs]?|folgende[nrs]?)\s+{_DE_CALENDAR_UNIT}\b"
    rf"|\b{_FR_CALENDAR_UNIT}\s+(?:prochain|prochaine)\b"
)
_THIS = re.compile(
    r"\b(?:this|current|so far this)\s+(week|month|quarter|year)\b"
    rf"|\b(?:diese[nrms]?|laufende[nrms]?|aktuelle[nrms]?)\s+{_DE_CALENDAR_UNIT}\b"
    rf"|\b(?:cette|ce|cet)\s+{_FR_CALENDAR_UNIT}\b"
)
_TO_DATE = re.compile(r"\b(month|quarter|year)[- ]to[- ]date\b|\b(mtd|qtd|ytd)\b")
_DAY = re.compile(r"\b(today|yesterday|heute|gestern|aujourd'hui)\b")
_QUARTER = re.compile(
    r"\bq([1-4])(?:\s*(?:of\s+)?'?(\d{4}|\d{2}))?\b"
    rf"|\b(?:([1-4])(?:\.|er|e|ème)|({_alternatives(_QUARTER_ORDINALS)}))\s*"
    r"(?:quartal|trimestre)(?:\s+(?:de\s+|des jahres\s+)?(\d{4}))?\b"
)
_MONTH_YEAR = re.compile(rf"\b({_ANY_MONTH})\.?\s+(\d{{4}})\b")
_IN_MONTH = re.compile(
    r"\b(?:(?:in|during|for|over|of|through(?:out)?|im|während|für|en|pendant|durant)\s+"
    rf"|au mois d(?:e\s+|'))({_ANY_MONTH})\b"
)
_BARE_MONTH = re.compile(rf"\b({_BARE_MONTHS})\b")
_ISO_MONTH = re.compile(r"\b(\d{4})-(\d{2})\b(?!-\d)")
_YEAR = re.compile(r"\b(?:in|during|for|of|over|throughout|im jahre?|en|pour)\s+(20\d{2})\b")

_DAY_WORDS = {
    "today": "today",
    "heute": "today",
    "aujourd'hui": "today",
    "yesterday": "yesterday",
    "gestern": "yesterday",
}


def _unit(word: str) -> str:
    """The English unit of an English, German or French unit word ("monats" -> "month")."""
    return _UNITS[word]


def _first(match: re.Match[str], *groups: int) -> str | None:
    return next((match.group(group) for group in groups if match.group(group)), None)


def _date(groups: tuple[str | None, ...]) -> date | None:
    """A date from either the ISO groups or the "March 5, 2026" groups of `_DATE`."""
    try:
        if groups[0] is not None:
            return date(int(groups[0]), int(groups[1] or 0), int(groups[2] or 0))
        if groups[3] is not None:
            return date(int(groups[5] or 0), _MONTHS[groups[3]], int(groups[4] or 0))
    except ValueError:
        return None
    return None


def _year(text: str | None) -> int | None:
    if text is None:
        return None
    year = int(text)
    year = year + 2000 if year < 100 else year
    return year if 2000 <= year <= 2100 else None


def _range(match: re.Match[str]) -> RequestedPeriod | None:
    start, end = _date(match.groups()[:6]), _date(match.groups()[6:])
    if start is None or end is None or end < start:
        return None
    return RequestedPeriod(text=match.group(0), start=start, end=end + timedelta(days=1))


def _since(match: re.Match[str]) -> RequestedPeriod | None:
    start = _date(match.groups())
    if start is None:
        return None
    return RequestedPeriod(text=match.group(0), start=start, to_anchor=True)


def _until(match: re.Match[str]) -> RequestedPeriod | None:
    end = _date(match.groups())
    return None if end is None else RequestedPeriod(text=match.group(0), end=end)


def _since_month(match: re.Match[str]) -> RequestedPeriod:
    return RequestedPeriod(
        text=match.group(0),
        month=_MONTHS[match.group(1)],
        year=_year(match.group(2)),
        to_anchor=True,
    )


def _last_n(match: re.Match[str]) -> RequestedPeriod | None:
    amount_text = _first(match, 1, 3, 5, 7) or ""
    unit = _unit(_first(match, 2, 4, 6, 8) or "")
    amount = int(amount_text) if amount_text.isdigit() else _NUMBERS[amount_text]
    days = -(-amount // 24) if unit == "hour" else amount * _UNIT_DAYS[unit]
    if not 1 <= days <= 3_660:
        return None
    return RequestedPeriod(text=match.group(0), last_days=days)


def _last_unit(match: re.Match[str]) -> RequestedPeriod:
    word, unit = match.group(1), _first(match, 2, 3, 4) or ""
    if unit in {"24 hours", "day"}:
        return RequestedPeriod(text=match.group(0), last_days=1)
    unit = _unit(unit)
    if word == "past":
        return RequestedPeriod(text=match.group(0), last_days=_UNIT_DAYS[unit])
    return RequestedPeriod(text=match.group(0), calendar=f"last_{unit}")


def _calendar(prefix: str) -> Callable[[re.Match[str]], RequestedPeriod]:
    """A builder for "this/next <unit>" in any of the languages, the unit in any group."""

    def build(match: re.Match[str]) -> RequestedPeriod:
        unit = _unit(next(group for group in match.groups() if group))
        return RequestedPeriod(text=match.group(0), calendar=f"{prefix}_{unit}")

    return build


def _to_date(match: re.Match[str]) -> RequestedPeriod:
    unit = match.group(1) or {"mtd": "month", "qtd": "quarter", "ytd": "year"}[match.group(2)]
    return RequestedPeriod(text=match.group(0), calendar=f"this_{unit}")


def _day(match: re.Match[str]) -> RequestedPeriod:
    return RequestedPeriod(text=match.group(0), calendar=_DAY_WORDS[match.group(1)])


def _quarter(match: re.Match[str]) -> RequestedPeriod:
    number = _first(match, 1, 3)
    quarter = int(number) if number else _QUARTER_ORDINALS[match.group(4)]
    return RequestedPeriod(text=match.group(0), quarter=quarter, year=_year(_first(match, 2, 5)))


def _month_year(match: re.Match[str]) -> RequestedPeriod | None:
    year = _year(match.group(2))
    return (
        None
        if year is None
        else RequestedPeriod(text=match.group(0), month=_MONTHS[match.group(1)], year=year)
    )


def _month(match: re.Match[str]) -> RequestedPeriod:
    return RequestedPeriod(text=match.group(0), month=_MONTHS[match.group(1)])


def _iso_month(match: re.Match[str]) -> RequestedPeriod | None:
    year, month = _year(match.group(1)), int(match.group(2))
    if year is None or not 1 <= month <= 12:
        return None
    return RequestedPeriod(text=match.group(0), month=month, year=year)


def _year_only(match: re.Match[str]) -> RequestedPeriod | None:
    year = _year(match.group(1))
    return None if year is None else RequestedPeriod(text=match.group(0), year=year)


_FORMS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], RequestedPeriod | None]], ...] = (
    (_RANGE, _range),
    (_SINCE, _since),
    (_UNTIL, _until),
    (_SINCE_MONTH, _since_month),
    (_LAST_N, _last_n),
    (_LAST_UNIT, _last_unit),
    (_NEXT, _calendar("next")),
    (_TO_DATE, _to_date),
    (_THIS, _calendar("this")),
    (_DAY, _day),
    (_QUARTER, _quarter),
    (_MONTH_YEAR, _month_year),
    (_ISO_MONTH, _iso_month),
    (_IN_MONTH, _month),
    (_YEAR, _year_only),
    (_BARE_MONTH, _month),
)


def extract_period(text: str) -> RequestedPeriod | None:
    """The period named in normalised (lower-case) text, or None when it names none."""
    for pattern, build in _FORMS:
        for match in pattern.finditer(text):
            period = build(match)
            if period is not None:
                return period
    return None
