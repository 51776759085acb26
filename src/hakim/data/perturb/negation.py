"""Turn a sentence's polarity around once, in Malay or English, never stacking a second negation on a first.

A sentence without a negator gains one at its first anchor: a copula becomes `bukan` ("ialah" -> "bukan"),
`telah`/`sudah` become `belum`, `ada` becomes `tiada`, and `tidak` goes before a modal ("akan", "boleh") or
the first verb by its prefix (me-, ber-, di-) that no relative word ("yang", "untuk") puts in a side clause.
English gains `not` after its first auxiliary. A sentence with exactly one negator loses it (`tidak` is
dropped, `tiada` -> `ada`, `belum` -> `sudah`; English `not`, and `n't` forms). Anything else gives nothing:
two negators, `bukan`/`tanpa`/`never` (whose removal breaks the grammar), or idioms where `tidak` negates
nothing ("tidak kira", "tidak lama kemudian", "atau tidak").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hakim.data.perturb.text import WORD

NEGATORS = {
    "ms": frozenset("tidak tak bukan bukanlah tidaklah tiada belum tanpa jangan takkan".split()),
    "en": frozenset("not never no none nothing nobody neither nor without cannot".split()),
}
MS_COPULAS = frozenset({"ialah", "adalah", "merupakan"})
MS_PERFECT = frozenset({"telah", "sudah"})
MS_MODALS = frozenset("akan boleh dapat pernah mampu perlu harus mesti sempat berjaya".split())
MS_TER_VERBS = frozenset("terletak terdapat terlibat terpilih terjejas termasuk".split())
# Words that look like me-/ber-/di- verbs but are nouns, adjectives or prepositions.
MS_NOT_VERBS = frozenset(
    "mereka meter menteri menara media medan meja merah mesin mesyuarat metrik menu mentah mengenai menerusi "
    "menjelang mengikut menurut melalui berbanding bersama berhampiran berikutnya berita berat beras berhad "
    "beraneka berapa diri dirinya dinding dinasti digital diploma diameter dividen disiplin diskaun dialog "
    "diesel dimensi dinamik diplomat direktori dinihari".split()
)
# After these a verb belongs to a side clause ("yang dibina", "untuk menarik"): not the claim's main verb.
MS_SIDE_CLAUSE = frozenset("yang untuk bagi dengan sambil supaya agar cara tanpa".split())
MS_VERB = re.compile(r"(?:me(?:m|n|ng|ny)?\w{3,}|ber\w{3,}|di\w{4,})")
# Verbs that report speech: "X berkata Y" -> "X tidak berkata Y" is an easy negative; the fact reported is the one
# to negate, so the search goes on past them.
MS_REPORTING = frozenset("berkata memberitahu memaklumkan menambah menjelaskan menyatakan mendakwa menurut".split())
# Adverbs before a verb that `tidak` goes in front of: "turut menampilkan" -> "tidak turut menampilkan".
MS_PREVERBAL = frozenset("turut sering kerap selalu sentiasa masih cuma siap sedang baru".split())
# `tidak` followed by these (or after "atau") is an idiom, not a negation of a fact.
MS_IDIOMS_AFTER = frozenset("kira lama terkira terhingga syak hairanlah seperti hanya sahaja semestinya".split())
EN_AUXILIARIES = frozenset("is are was were will would can could should must may might does did".split())
EN_PERFECT = frozenset({"has", "have", "had"})
EN_CONTRACTIONS = {
    "don't": "do",
    "doesn't": "does",
    "didn't": "did",
    "isn't": "is",
    "aren't": "are",
    "wasn't": "was",
    "weren't": "were",
    "won't": "will",
    "can't": "can",
    "cannot": "can",
    "couldn't": "could",
    "shouldn't": "should",
    "wouldn't": "would",
    "hasn't": "has",
    "haven't": "have",
    "hadn't": "had",
}


@dataclass(frozen=True)
class PolarityChange:
    start: int
    end: int
    old: str
    new: str  # "" when a negator is dropped
    direction: str  # added | removed


def _negators(words: list[re.Match], language: str) -> list[re.Match]:
    found = []
    for word in words:
        text = word.group().lower().replace("’", "'")
        if text in NEGATORS[language] or (language == "en" and (text.endswith("n't") or text in EN_CONTRACTIONS)):
            found.append(word)
    return found


def _case_like(old: str, new: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def _remove_ms(words: list[re.Match], negator: re.Match) -> PolarityChange | None:
    index = words.index(negator)
    text = negator.group().lower()
    following = words[index + 1].group().lower() if index + 1 < len(words) else ""
    previous = words[index - 1].group().lower() if index else ""
    if text == "tiada":
        return PolarityChange(
            negator.start(), negator.end(), negator.group(), _case_like(negator.group(), "ada"), "removed"
        )
    if text == "belum":
        return PolarityChange(
            negator.start(), negator.end(), negator.group(), _case_like(negator.group(), "sudah"), "removed"
        )
    if text == "tidak" and following and following not in MS_IDIOMS_AFTER and previous not in ("atau", "sama"):
        end = (
            words[index + 1].start()
            if following != "lagi"
            else words[index + 2].start()
            if index + 2 < len(words)
            else None
        )
        if end is not None:
            return PolarityChange(negator.start(), end, negator.string[negator.start() : end], "", "removed")
    return None


def _add_ms(words: list[re.Match]) -> PolarityChange | None:
    for index, word in enumerate(words):
        text = word.group()
        previous = words[index - 1].group().lower() if index else ""
        if text.lower() in MS_COPULAS:
            return PolarityChange(word.start(), word.end(), text, _case_like(text, "bukan"), "added")
        if text.lower() in MS_PERFECT:
            return PolarityChange(word.start(), word.end(), text, _case_like(text, "belum"), "added")
        if text.lower() == "ada":
            return PolarityChange(word.start(), word.end(), text, _case_like(text, "tiada"), "added")
        if not text.islower() or previous in MS_SIDE_CLAUSE or index == 0 or text in MS_REPORTING:
            continue
        if text in MS_MODALS or text in MS_TER_VERBS or (MS_VERB.fullmatch(text) and text not in MS_NOT_VERBS):
            at = words[index - 1] if previous in MS_PREVERBAL else word
            return PolarityChange(at.start(), at.start(), "", "tidak ", "added")
    return None


def _remove_en(words: list[re.Match], negator: re.Match) -> PolarityChange | None:
    text = negator.group().lower().replace("’", "'")
    index = words.index(negator)
    following = words[index + 1].group().lower() if index + 1 < len(words) else ""
    if text == "not" and following != "only" and index > 0:
        return PolarityChange(
            words[index - 1].end(), negator.end(), negator.string[words[index - 1].end() : negator.end()], "", "removed"
        )
    if text in EN_CONTRACTIONS:
        return PolarityChange(
            negator.start(),
            negator.end(),
            negator.group(),
            _case_like(negator.group(), EN_CONTRACTIONS[text]),
            "removed",
        )
    return None


def _add_en(words: list[re.Match]) -> PolarityChange | None:
    for index, word in enumerate(words[:-1]):
        text = word.group().lower()
        following = words[index + 1].group().lower()
        perfect = text in EN_PERFECT and (following == "been" or following.endswith(("ed", "en")))
        if following.startswith("un") and len(following) > 4:  # "was unable": "was not unable" negates twice
            return None
        if text in EN_AUXILIARIES or perfect:
            return PolarityChange(word.end(), word.end(), "", " not", "added")
    return None


def polarity_change(sentence: str, language: str) -> PolarityChange | None:
    """The one change that turns the sentence's polarity around, or None where no safe change exists."""
    words = list(WORD.finditer(sentence))
    negators = _negators(words, language)
    if len(negators) > 1:
        return None
    if negators:
        return (_remove_ms if language == "ms" else _remove_en)(words, negators[0])
    return (_add_ms if language == "ms" else _add_en)(words)
