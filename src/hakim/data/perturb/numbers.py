"""Quantities in a sentence, and a changed one the document writes nowhere.

A quantity is a number in digits (with an optional currency: RM, AS$, US$, S$, $) or a number word from two to
ten. It changes by about a quarter of its value, keeping its round zeros, decimals and thousands separators
("21,000" -> "26,000", "5.8" -> "7.3", "tiga" -> "empat"), so "kira-kira 4,095 meter" cannot become "about 4,100"
and still be true. The new value must be no number the document writes, in digits or words, whatever it counts
there: "dua jalan ditutup" keeps "138 orang" from becoming "2 orang". Not quantities, so left alone: years
and days of the month (hakim.data.perturb.dates), numbers glued to letters or hyphens ("39B", "ke-38", "3-1"),
numbers that follow a
name ("Taipei 101", "Perkara 152") and clock times with minutes ("pukul 2.17").
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from decimal import Decimal

from hakim.data.perturb.dates import days_of_month

NUMBER = re.compile(r"(?<![\w\-/.,$])(RM|AS\$|US\$|S\$|\$)?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w\-/]|[.,]\d)")
ANY_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
NUMBER_WORDS = {
    "ms": {"dua": 2, "tiga": 3, "empat": 4, "lima": 5, "enam": 6, "tujuh": 7, "lapan": 8, "sembilan": 9, "sepuluh": 10},
    "en": {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10},
}
# "satu" and "one" are left out: "salah satu", "one of", "no one" count nothing.
CLOCK_WORDS = frozenset({"pukul", "jam", "at"})
PERCENT_WORDS = ("%", " peratus", " percent", " per cent")
CHANGE_SHARE = 0.25


@dataclass(frozen=True)
class NumberChange:
    start: int
    end: int
    old: str
    new: str


def _word_pattern(language: str) -> re.Pattern:
    words = [*NUMBER_WORDS[language], *(word.title() for word in NUMBER_WORDS[language])]
    return re.compile(rf"(?<![\w\-])({'|'.join(words)})(?![\w\-])")


def document_values(text: str, language: str) -> set[Decimal]:
    """Every number the document writes, in digits (any form, years and scores too) or as a word."""
    values = {
        Decimal(match.group().replace(",", ""))
        for match in ANY_NUMBER.finditer(text)
        if match.group().replace(",", "").replace(".", "").isdigit()
    }
    values |= {
        Decimal(NUMBER_WORDS[language][match.group().lower()]) for match in _word_pattern(language).finditer(text)
    }
    return values


def _is_year(match: re.Match) -> bool:
    currency, digits, decimals = match.groups()
    return not currency and decimals is None and "," not in digits and 1500 <= int(digits) <= 2099


def _identifier_or_clock(sentence: str, match: re.Match) -> bool:
    before = sentence[: match.start()].rstrip()
    previous = before.rsplit(None, 1)[-1] if before else ""
    if match.group(3) is not None and previous.lower() in CLOCK_WORDS:
        return True
    # After a capitalized word inside the sentence: a name or a label, not an amount.
    return bool(previous) and previous[:1].isupper() and previous[-1].isalpha() and before != previous


def _candidates(digits: str, decimals: str | None) -> list[tuple[Decimal, str]]:
    """Changed values (about a quarter up or down, round zeros kept), each with its text in the original's format."""
    scale = len(decimals) if decimals else 0
    whole = int(digits.replace(",", "") + (decimals or ""))
    zeros = 0
    if not scale:
        while whole and whole % 10 ** (zeros + 1) == 0:
            zeros += 1
    core = whole // 10**zeros
    step = max(1, round(core * CHANGE_SHARE))
    found = []
    for changed in (core + step, core - step, core + 2 * step):
        if changed <= 0:
            continue
        value = Decimal(changed * 10**zeros).scaleb(-scale)
        integer = int(value)
        text = f"{integer:,}" if "," in digits else str(integer)
        if scale:
            text += "." + f"{changed * 10**zeros:0{scale + 1}d}"[-scale:]
        found.append((value, text))
    return found


def number_changes(sentence: str, taken: set[Decimal], language: str, rng: random.Random) -> list[NumberChange]:
    """One changed version of each quantity in the sentence; `taken` holds the document's numbers (document_values)."""
    changes = []
    days = {start for start, _ in days_of_month(sentence, language)}
    for match in NUMBER.finditer(sentence):
        if _is_year(match) or match.start() in days or _identifier_or_clock(sentence, match):
            continue
        currency, digits, decimals = match.groups()
        percent = sentence[match.end() :].startswith(PERCENT_WORDS)
        options = [
            text
            for value, text in _candidates(digits, decimals)
            if value not in taken and not (percent and value > 100)
        ]
        if options:
            changes.append(
                NumberChange(match.start(), match.end(), match.group(), (currency or "") + rng.choice(options))
            )
    values = NUMBER_WORDS[language]
    names = {value: word for word, value in values.items()}
    for match in _word_pattern(language).finditer(sentence):
        if match.group()[:1].isupper() and match.start() > 0:  # "Tiga Babi Kecil": a title, not a count
            continue
        value = values[match.group().lower()]
        options = [
            names[other]
            for other in (value + 1, value - 1, value + 2)
            if other in names and Decimal(other) not in taken
        ]
        if options:
            new = rng.choice(options)
            new = new.title() if match.group()[:1].isupper() else new
            changes.append(NumberChange(match.start(), match.end(), match.group(), new))
    return sorted(changes, key=lambda change: change.start)
