"""Read the period a request names: "last 7 days", "in March", "since 2026-10-01", "Q3 2025"...

The result stays symbolic (a `RequestedPeriod`): relative periods are resolved later against the
caller's newest row, which only the data layer knows. Forms are tried from the most explicit
(two dates) to the vaguest ("this month"), and the first that matches wins.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

from apex.llm.classification import RequestedPeriod

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12,
}
_NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "thirty": 30,
    "sixty": 60, "ninety": 90, "couple of": 2, "few": 3,
}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "quarter": 91, "year": 365}
_FULL_MONTHS = "|".join(name for name, _ in zip(_MONTHS, range(12)) if name != "may")
_ANY_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ISO = r"(\d{4})-(\d{1,2})-(\d{1,2})"
_NAMED_DATE = rf"(?:({_ANY_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}}))"
_DATE = rf"(?:{_ISO}|{_NAMED_DATE})"

_RANGE = re.compile(rf"\b(?:between|from)\s+{_DATE}\s+(?:and|to|until|till|through|-)\s+{_DATE}")
_SINCE = re.compile(rf"\b(?:since|from|after|starting(?: on| from)?)\s+{_DATE}")
_UNTIL = re.compile(rf"\b(?:before|until|till|up to)\s+{_DATE}")
_SINCE_MONTH = re.compile(rf"\b(?:since|from|after)\s+(?:the (?:start|beginning) of\s+)?"
                          rf"({_ANY_MONTH})\b(?:\s+(\d{{4}}))?")
_LAST_N = re.compile(
    r"\b(?:last|past|previous|prior|trailing|over the last|over the past)\s+"
    r"(\d{1,4}|couple of|few|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven"
    r"|twelve|fourteen|thirty|sixty|ninety)\s+(hour|day|week|month|quarter|year)s?\b"
)
_LAST_UNIT = re.compile(r"\b(last|past|previous|prior)\s+(24 hours|day|week|month|quarter|year)\b")
_THIS = re.compile(r"\b(?:this|current|so far this)\s+(week|month|quarter|year)\b")
_TO_DATE = re.compile(r"\b(month|quarter|year)[- ]to[- ]date\b|\b(mtd|qtd|ytd)\b")
_DAY = re.compile(r"\b(today|yesterday)\b")
_QUARTER = re.compile(r"\bq([1-4])(?:\s*(?:of\s+)?'?(\d{4}|\d{2}))?\b")
_MONTH_YEAR = re.compile(rf"\b({_ANY_MONTH})\.?\s+(\d{{4}})\b")
_IN_MONTH = re.compile(rf"\b(?:in|during|for|over|of|through(?:out)?)\s+({_ANY_MONTH})\b")
_BARE_MONTH = re.compile(rf"\b({_FULL_MONTHS})\b")
_ISO_MONTH = re.compile(r"\b(\d{4})-(\d{2})\b(?!-\d)")
_YEAR = re.compile(r"\b(?:in|during|for|of|over|throughout)\s+(20\d{2})\b")


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
    return RequestedPeriod(text=match.group(0), month=_MONTHS[match.group(1)],
                           year=_year(match.group(2)), to_anchor=True)


def _last_n(match: re.Match[str]) -> RequestedPeriod | None:
    amount_text, unit = match.group(1), match.group(2)
    amount = int(amount_text) if amount_text.isdigit() else _NUMBERS[amount_text]
    days = -(-amount // 24) if unit == "hour" else amount * _UNIT_DAYS[unit]
    if not 1 <= days <= 3_660:
        return None
    return RequestedPeriod(text=match.group(0), last_days=days)


def _last_unit(match: re.Match[str]) -> RequestedPeriod:
    word, unit = match.group(1), match.group(2)
    if unit in {"24 hours", "day"}:
        return RequestedPeriod(text=match.group(0), last_days=1)
    if word == "past":
        return RequestedPeriod(text=match.group(0), last_days=_UNIT_DAYS[unit])
    return RequestedPeriod(text=match.group(0), calendar=f"last_{unit}")  # type: ignore[arg-type]


def _this(match: re.Match[str]) -> RequestedPeriod:
    unit = match.group(1)
    return RequestedPeriod(text=match.group(0), calendar=f"this_{unit}")  # type: ignore[arg-type]


def _to_date(match: re.Match[str]) -> RequestedPeriod:
    unit = match.group(1) or {"mtd": "month", "qtd": "quarter", "ytd": "year"}[match.group(2)]
    return RequestedPeriod(text=match.group(0), calendar=f"this_{unit}")  # type: ignore[arg-type]


def _day(match: re.Match[str]) -> RequestedPeriod:
    return RequestedPeriod(text=match.group(0), calendar=match.group(1))  # type: ignore[arg-type]


def _quarter(match: re.Match[str]) -> RequestedPeriod:
    return RequestedPeriod(text=match.group(0), quarter=int(match.group(1)),
                           year=_year(match.group(2)))


def _month_year(match: re.Match[str]) -> RequestedPeriod | None:
    year = _year(match.group(2))
    return None if year is None else RequestedPeriod(
        text=match.group(0), month=_MONTHS[match.group(1)], year=year)


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
    (_RANGE, _range), (_SINCE, _since), (_UNTIL, _until), (_SINCE_MONTH, _since_month),
    (_LAST_N, _last_n), (_LAST_UNIT, _last_unit), (_TO_DATE, _to_date), (_THIS, _this),
    (_DAY, _day), (_QUARTER, _quarter), (_MONTH_YEAR, _month_year), (_ISO_MONTH, _iso_month),
    (_IN_MONTH, _month), (_YEAR, _year_only), (_BARE_MONTH, _month),
)


def extract_period(text: str) -> RequestedPeriod | None:
    """The period named in normalised (lower-case) text, or None when it names none."""
    for pattern, build in _FORMS:
        for match in pattern.finditer(text):
            period = build(match)
            if period is not None:
                return period
    return None
