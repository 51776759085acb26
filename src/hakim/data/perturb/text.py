"""A document as the rules see it: its sentences (with their place in the passage), words and normalized text.

Sentences come from the prompt's own splitter (hakim.prompting.passage_focus), with one repair: a cut after
an abbreviation or an initial ("Dr. Siti", "S.W.A.T. telah ...") is joined again, since a rule that edits half
a name would write a claim about a sentence nobody wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from hakim.prompting.passage_focus import split_sentences

# Titles and short forms that end in a full stop without ending a sentence, in Malay and English news.
ABBREVIATIONS = frozenset(
    "dr prof en pn cik tn hj hjah dato sdn bhd no bil kg jln lot tel st mr mrs ms mt ft jr sr vs etc co inc ltd "
    # "Mac", "Jun", "Ogos" are whole months
    "gen col capt lt sgt rev jan feb apr jul aug sep sept okt oct nov dis dec".split()
)
WORD = re.compile(r"\w+(?:['’\-]\w+)*")
_LAST_TOKEN = re.compile(r"(\S+)\.$")


@dataclass(frozen=True)
class Sentence:
    index: int  # 0-based position in the document
    text: str
    start: int  # character offsets in the passage, so a sentence can be cut out of it
    end: int

    @property
    def words(self) -> list[str]:
        return WORD.findall(self.text)


@dataclass
class Document:
    """One passage of the corpus (every real row that shares its doc_id and text reads it)."""

    doc_id: str
    passage: str
    language: str
    split: str
    rows: list  # the JudgeRecords that read this passage, in file order
    sentences: list[Sentence] = field(init=False)

    def __post_init__(self):
        self.sentences = sentence_spans(self.passage)

    @property
    def normalized(self) -> str:
        return normalize(self.passage)

    def contains(self, text: str) -> bool:
        """Whether the document states `text` word for word (case, spacing and final punctuation aside)."""
        return normalize(text) in self.normalized

    @cached_property
    def lowercase_words(self) -> set[str]:
        """Words the document writes in lower case somewhere: a capitalized one of them starting a sentence is no
        name."""
        return {word for word in WORD.findall(self.passage) if word.islower()}


def normalize(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def _cut_too_early(fragment: str, following: str) -> bool:
    if following[:1].islower():
        return True
    last = _LAST_TOKEN.search(fragment)
    if last is None:
        return False
    token = last.group(1).lstrip("(\"'“")
    # An initial ("A.", "S.W.A.T.") or a title; a sentence ending in a one-letter word is rare in both languages.
    return token.lower() in ABBREVIATIONS or bool(re.fullmatch(r"(?:[A-Z]\.)*[A-Z]", token))


def sentence_spans(passage: str) -> list[Sentence]:
    """The passage's sentences with their offsets; a cut after an abbreviation or initial is joined again."""
    pieces = split_sentences(passage)
    joined: list[str] = []
    for piece in pieces:
        if joined and _cut_too_early(joined[-1], piece):
            joined[-1] = f"{joined[-1]} {piece}"
        else:
            joined.append(piece)
    sentences, cursor = [], 0
    for text in joined:
        first_word = text.split(" ", 1)[0]
        start = passage.find(first_word, cursor)
        end = _end_of(passage, text, start)
        sentences.append(Sentence(len(sentences), passage[start:end], start, end))
        cursor = end
    return sentences


def _end_of(passage: str, text: str, start: int) -> int:
    """Where `text` (rejoined with single spaces) ends in the passage, whatever whitespace the passage used."""
    position = start
    for word in text.split(" "):
        position = passage.find(word, position) + len(word)
    return position


def word_count(text: str) -> int:
    return len(WORD.findall(text))


def replace_span(text: str, start: int, end: int, new: str) -> str:
    """`text` with [start, end) replaced, keeping a capital at the start of the sentence."""
    if start == 0 and new and text[:1].isupper():
        new = new[:1].upper() + new[1:]
    return text[:start] + new + text[end:]
