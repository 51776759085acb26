"""Dates in a sentence, and a different date the document does not give: a year, a month or a weekday.

A year is a four-digit number from 1500 to 2099 written without a thousands separator ("1957", not "1,957"
or "1950-an"); it moves by a few years, to a number the document writes nowhere. A day of the month ("14 Januari",
"January 14") moves by a few days within 1-28, also to a number the document writes nowhere. A month or weekday
becomes another the document names nowhere, so "Selasa, 14 Januari" cannot become a day the document also mentions.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

MONTHS = {
    "ms": (
        "Januari",
        "Februari",
        "Mac",
        "April",
        "Mei",
        "Jun",
        "Julai",
        "Ogos",
        "September",
        "Oktober",
        "November",
        "Disember",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}
WEEKDAYS = {
    "ms": ("Isnin", "Selasa", "Rabu", "Khamis", "Jumaat", "Sabtu", "Ahad"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
# English months that are also common words ("May", "March"): read as a month only inside a sentence.
AMBIGUOUS_AT_START = frozenset({"May", "March"})
YEAR = re.compile(r"(?<![\w,.\-/])(1[5-9]\d\d|20\d\d)(?![\w\-/]|[.,]\d)")
YEAR_SHIFTS = (1, 2, 3, 5, 10)
DAY_SHIFTS = (1, 2, 3)
LAST_SAFE_DAY = 28  # every month has it


def days_of_month(sentence: str, language: str) -> list[tuple[int, int]]:
    """(start, end) of each day number written next to a month: before it ("14 Januari"), or after it in English."""
    months = "|".join(MONTHS[language])
    day = r"(?:[1-9]|[12]\d|3[01])"
    found = [match.span(1) for match in re.finditer(rf"(?<![\w\-/.,])({day}) (?:{months})\b", sentence)]
    if language == "en":
        found += [match.span(1) for match in re.finditer(rf"\b(?:{months}) ({day})(?![\w\-/]|[.,]\d)", sentence)]
    return sorted(found)


@dataclass(frozen=True)
class DateChange:
    start: int
    end: int
    old: str
    new: str
    kind: str  # year | day | month | weekday


def _named(text: str, names: tuple[str, ...]) -> list[re.Match]:
    found = []
    for match in re.finditer(r"(?<![\w\-])(" + "|".join(names) + r")(?![\w\-])", text):
        if match.start() == 0 and match.group() in AMBIGUOUS_AT_START:
            continue
        found.append(match)
    return found


def date_changes(sentence: str, document_text: str, taken: set, language: str, rng: random.Random) -> list[DateChange]:
    """One changed version of each date the sentence holds, each to a value the document names nowhere
    (`taken`: every number the document writes, hakim.data.perturb.numbers.document_values)."""
    changes = []
    for match in YEAR.finditer(sentence):
        year = int(match.group())
        options = [
            year + sign * shift
            for shift in YEAR_SHIFTS
            for sign in (-1, 1)
            if 1500 <= year + sign * shift <= 2099 and year + sign * shift not in taken
        ]
        if options:
            changes.append(DateChange(match.start(), match.end(), match.group(), str(rng.choice(options[:4])), "year"))
    for start, end in days_of_month(sentence, language):
        day = int(sentence[start:end])
        options = [
            day + sign * shift
            for shift in DAY_SHIFTS
            for sign in (-1, 1)
            if 1 <= day + sign * shift <= LAST_SAFE_DAY and day + sign * shift not in taken
        ]
        if options:
            changes.append(DateChange(start, end, sentence[start:end], str(rng.choice(options)), "day"))
    for kind, table in (("month", MONTHS[language]), ("weekday", WEEKDAYS[language])):
        named = {match.group() for match in _named(document_text, table)}
        for match in _named(sentence, table):
            position = table.index(match.group())
            # The nearest names first: "Mac" for "Februari" is a harder negative than "Oktober".
            nearby = sorted(
                (name for name in table if name not in named), key=lambda name: _distance(table, position, name)
            )
            if nearby:
                changes.append(DateChange(match.start(), match.end(), match.group(), rng.choice(nearby[:3]), kind))
    return sorted(changes, key=lambda change: change.start)


def _distance(table: tuple[str, ...], position: int, name: str) -> int:
    gap = abs(table.index(name) - position)
    return min(gap, len(table) - gap)
