"""Keep only the passage sentences that speak to the claim: fewer tokens, evidence closer to the verdict.

A BoolQ answer or a FIB inconsistency usually turns on one or two sentences of the passage. For a
small judge (and for CPU training budgets) reading the whole passage costs tokens it cannot use;
`focus_passage` keeps the `sentences` sentences that share the most words with the claim, in their
original order, and marks each gap with an ellipsis so the judge can see that text was left out.

Scoring uses the passage alone and the claim, never a label: a word counts `log(n / df)`, where
n is the passage's number of sentences and df how many of them contain it, so words that occur in
every sentence (function words, in any language) count nothing and the rare shared ones decide.
Ties go to the earlier sentence. Off by default (`style.passage_sentences: null`): a 7B judge
reads whole passages.
"""

from __future__ import annotations

import math
import re

GAP_MARK = "…"
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+(?=\S)")
_WORD = re.compile(r"\w+", re.UNICODE)
# Titles and short forms that end in a full stop without ending a sentence, in Malay and English news.
ABBREVIATIONS = frozenset(
    "dr prof en pn cik tn hj hjah dato sdn bhd no bil kg jln lot tel st mr mrs ms mt ft jr sr vs etc co inc ltd "
    # "Mac", "Jun", "Ogos" are whole months
    "gen col capt lt sgt rev jan feb apr jul aug sep sept okt oct nov dis dec".split()
)
_LAST_WORD = re.compile(r"(\S+)\.$")
_INITIALS = re.compile(r"(?:[A-Z]\.)*[A-Z]")


def _cut_inside_a_sentence(before: str, after: str) -> bool:
    """Whether a cut between `before` and `after` fell inside one sentence: `after` starts in lower case, or
    `before` ends in a title or short form ("Dr.", "Sdn. Bhd.") or an initial ("A.", "S.W.A.T.")."""
    if after[:1].islower():
        return True
    last = _LAST_WORD.search(before)
    if last is None:
        return False
    word = last.group(1).lstrip("(\"'“")
    return word.lower() in ABBREVIATIONS or bool(_INITIALS.fullmatch(word))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, without the whitespace around it; never empty. A sentence
    ends at . ! ? followed by whitespace, except after a title, short form or initial ("Dr. Siti", "Syarikat
    Maju Sdn. Bhd. berkata", "S.W.A.T. telah") or before a lower-case word. Spans, not strings: a chunk of
    whole sentences is then a slice of the passage as written, its own spacing and line breaks kept."""
    pieces, start = [], 0
    for gap in _SENTENCE_END.finditer(text):
        pieces.append((start, gap.start()))
        start = gap.end()
    pieces.append((start, len(text)))
    spans: list[tuple[int, int]] = []
    for start, end in pieces:
        part = text[start:end]
        if not part.strip():
            continue
        start += len(part) - len(part.lstrip())
        end = start + len(part.strip())
        if spans and _cut_inside_a_sentence(text[spans[-1][0] : spans[-1][1]], text[start:end]):
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def split_sentences(passage: str) -> list[str]:
    """Sentences of a passage (as sentence_spans cuts them); never empty strings."""
    return [passage[start:end] for start, end in sentence_spans(passage)]


def _words(text: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(text)}


def sentence_scores(sentences: list[str], claim: str) -> list[float]:
    """How much of the claim each sentence shares, rare-in-passage words weighing most."""
    sentence_words = [_words(sentence) for sentence in sentences]
    claim_words = _words(claim)
    document_frequency: dict[str, int] = {}
    for words in sentence_words:
        for word in words & claim_words:
            document_frequency[word] = document_frequency.get(word, 0) + 1
    weight = {word: math.log(len(sentences) / count) for word, count in document_frequency.items()}
    return [sum(weight[word] for word in words & claim_words) for words in sentence_words]


def focus_passage(passage: str, claim: str, sentences: int) -> str:
    """The `sentences` passage sentences most related to the claim, in passage order, gaps marked."""
    if sentences < 1:
        raise ValueError(f"passage_sentences must be at least 1 (or null to keep whole passages), got {sentences}")
    parts = split_sentences(passage)
    if len(parts) <= sentences:
        return passage
    scores = sentence_scores(parts, claim)
    ranked = sorted(range(len(parts)), key=lambda index: (-scores[index], index))
    kept = sorted(ranked[:sentences])
    pieces = []
    previous = -1
    for index in kept:
        if index != previous + 1:
            pieces.append(GAP_MARK)
        pieces.append(parts[index])
        previous = index
    if previous != len(parts) - 1:
        pieces.append(GAP_MARK)
    return " ".join(pieces)
