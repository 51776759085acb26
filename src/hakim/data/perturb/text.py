"""A document as the rules see it: its sentences (with their place in the passage), words and normalized text.

Sentences come from the prompt's own splitter (hakim.prompting.passage_focus), which keeps abbreviations and
initials ("Dr. Siti", "S.W.A.T. telah ...") inside their sentence: a rule that edits half a name would write a
claim about a sentence nobody wrote, and a judge reads the same sentences the rules cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from hakim.prompting import passage_focus

WORD = re.compile(r"\w+(?:['’\-]\w+)*")


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


def sentence_spans(passage: str) -> list[Sentence]:
    """The passage's sentences with their offsets."""
    return [
        Sentence(index, passage[start:end], start, end)
        for index, (start, end) in enumerate(passage_focus.sentence_spans(passage))
    ]


def word_count(text: str) -> int:
    return len(WORD.findall(text))


def replace_span(text: str, start: int, end: int, new: str) -> str:
    """`text` with [start, end) replaced, keeping a capital at the start of the sentence."""
    if start == 0 and new and text[:1].isupper():
        new = new[:1].upper() + new[1:]
    return text[:start] + new + text[end:]
