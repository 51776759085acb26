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


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, split after . ! ? followed by whitespace, without the
    whitespace around it; never empty. Spans, not strings: a chunk of whole sentences is then a slice of
    the passage as written, its own spacing and line breaks kept."""
    spans, start = [], 0
    for gap in _SENTENCE_END.finditer(text):
        spans.append((start, gap.start()))
        start = gap.end()
    spans.append((start, len(text)))
    stripped = []
    for start, end in spans:
        part = text[start:end]
        if part.strip():
            start += len(part) - len(part.lstrip())
            stripped.append((start, start + len(part.strip())))
    return stripped


def split_sentences(passage: str) -> list[str]:
    """Sentences of a passage, split after . ! ? followed by whitespace; never empty strings."""
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
