"""Claims written by the teacher, in the MiniCheck manner: document -> claims, and claim -> document without the
sentence that supports it.

One request per document shows the teacher its numbered sentences and asks for `claims_per_document` claims in
the document's language, about half consistent (label 1) and half with one fact changed (label 0), each naming
the sentences it rests on. Each answer is checked here before it is kept: a sentence number outside the
document, a consistent claim without a sentence, or an "inconsistent" claim the document states word for word
is refused. Each consistent claim that rests on exactly one sentence (of a document with more than one) also
gives a removal: the document without that sentence, label 0; with check_removals the teacher is asked again
whether the shortened document still supports the claim, and only a "no" is kept (a fact told twice survives
the cut). Requests go through the translation stage's client, so they are cached, paced, retried and priced
the same way.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from hakim.data.perturb.text import Document, normalize, word_count
from hakim.data.teacher.ask import ask_each
from hakim.data.teacher.client import Rejected, TeacherClient, cost_usd
from hakim.data.teacher.requests import LANGUAGE_NAMES, TeacherRequest
from hakim.data.teacher.settings import TeacherSettings

log = logging.getLogger(__name__)

CLAIMS_SYSTEM = (
    "You write claims about a document to train a model that checks whether a claim is consistent with a document. "
    "The document's sentences are numbered. Write {count} claims in {language}, each one sentence a reader can check "
    "against the document alone. About half must be consistent (label 1): every part is stated in the document; "
    "restate it in your own words instead of copying a sentence. The others must be inconsistent (label 0): a "
    "consistent claim with exactly one fact changed (a name, number, date, place, or a negation) so that the document "
    "contradicts it. For each claim give `sentences`: the numbers of every sentence that states any part of it "
    "(label 1) or that it misstates (label 0), and `edit`: for label 0 what was changed, for label 1 an empty string."
)
CLAIMS_USER = "Document:\n{numbered}"
SUPPORT_SYSTEM = (
    "Decide whether the document supports every part of the claim. Answer supported: true only if the document "
    "states or clearly implies all of it; false if any part is missing or contradicted."
)
SUPPORT_USER = "Document:\n{passage}\n\nClaim:\n{claim}"
PROMPT_VERSION = hashlib.sha256(
    "\x00".join((CLAIMS_SYSTEM, CLAIMS_USER, SUPPORT_SYSTEM, SUPPORT_USER)).encode()
).hexdigest()[:12]
EXPECTED_TOKENS_PER_CLAIM = 60  # for the dry-run estimate: one sentence, its numbers and edit


class WrittenClaim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    claim: str
    label: Literal[0, 1]
    sentences: list[int]
    edit: str

    @field_validator("claim")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty claim")
        return value.strip()


class WrittenClaims(BaseModel):
    """The teacher's claims about one document."""

    model_config = ConfigDict(extra="forbid")
    claims: list[WrittenClaim]


class SupportCheck(BaseModel):
    """Whether a document supports a claim."""

    model_config = ConfigDict(extra="forbid")
    supported: bool


@dataclass(frozen=True)
class Written:
    """A kept teacher row before it becomes a record."""

    rule: str  # teacher_claim | teacher_removal
    label: int
    claim: str
    passage: str
    number: int  # the claim's place in the teacher's answer
    details: dict


@dataclass
class WrittenOutcome:
    rows: dict[str, list[Written]] = field(default_factory=dict)  # document key -> its rows, claims then removals
    rejects: list[dict] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # reason -> claims refused by the checks above

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1


def numbered(document: Document) -> str:
    return "\n".join(f"[{sentence.index + 1}] {sentence.text}" for sentence in document.sentences)


def claims_request(document: Document, count: int, settings: TeacherSettings) -> TeacherRequest:
    language = LANGUAGE_NAMES.get(document.language, document.language)
    system = CLAIMS_SYSTEM.format(count=count, language=language)
    return TeacherRequest(
        "claims",
        system,
        CLAIMS_USER.format(numbered=numbered(document)),
        WrittenClaims,
        settings.model,
        settings.cache_salt,
    )


def support_request(passage: str, claim: str, settings: TeacherSettings) -> TeacherRequest:
    return TeacherRequest(
        "support",
        SUPPORT_SYSTEM,
        SUPPORT_USER.format(passage=passage, claim=claim),
        SupportCheck,
        settings.model,
        settings.cache_salt,
    )


def without_sentence(document: Document, index: int) -> str:
    """The passage with one sentence cut out; the text around it keeps its own spacing."""
    sentence = document.sentences[index]
    before, after = document.passage[: sentence.start].rstrip(), document.passage[sentence.end :].lstrip()
    gap = document.passage[len(before) : sentence.start] or " "
    return before + gap + after if before and after else before or after


def key_of(document: Document) -> str:
    return f"{document.doc_id}\x00{document.passage}"


def _checked(
    document: Document, answer: WrittenClaims, count: int, min_words: int, outcome: WrittenOutcome
) -> list[tuple[int, WrittenClaim]]:
    """The claims that pass the checks, numbered in the teacher's order, at most `count`."""
    kept, seen = [], {normalize(row.claim) for row in document.rows}
    for number, item in enumerate(answer.claims[:count], start=1):
        if not item.sentences and item.label == 1:
            outcome.refuse("consistent claim without a sentence")
        elif any(not 1 <= index <= len(document.sentences) for index in item.sentences):
            outcome.refuse("sentence number outside the document")
        elif word_count(item.claim) < min_words:
            outcome.refuse("too short")
        elif item.label == 0 and document.contains(item.claim):
            outcome.refuse("inconsistent claim stated in the document")
        elif normalize(item.claim) in seen:
            outcome.refuse("repeats another claim")
        else:
            seen.add(normalize(item.claim))
            kept.append((number, item))
    return kept


async def write_claims(
    client: TeacherClient, documents: list[Document], count: int, min_words: int, removals: bool, check_removals: bool
) -> WrittenOutcome:
    """The plan handed to hakim.data.teacher.ask.ask_teacher: claims for every document, then the removal checks."""
    settings = client.settings
    outcome = WrittenOutcome()
    answers = await ask_each(client, [claims_request(document, count, settings) for document in documents])
    pending = []  # (document, claim number, claim, shortened passage, removed index)
    for document, answer in zip(documents, answers, strict=True):
        if isinstance(answer, Rejected):
            outcome.rejects.append(
                {"doc_id": document.doc_id, "row": document.rows[0].id, "stage": "claims", "reason": str(answer)}
            )
            continue
        rows = outcome.rows.setdefault(key_of(document), [])
        for number, item in _checked(document, answer, count, min_words, outcome):
            rows.append(
                Written(
                    "teacher_claim",
                    item.label,
                    item.claim,
                    document.passage,
                    number,
                    {"sentences": item.sentences, "edit": item.edit},
                )
            )
            if removals and item.label == 1 and len(item.sentences) == 1 and len(document.sentences) > 1:
                index = item.sentences[0] - 1
                pending.append((document, number, item, without_sentence(document, index), index))
    checks = (
        await ask_each(client, [support_request(passage, item.claim, settings) for _, _, item, passage, _ in pending])
        if check_removals
        else [None] * len(pending)
    )
    for (document, number, item, passage, index), check in zip(pending, checks, strict=True):
        if isinstance(check, Rejected):
            outcome.rejects.append(
                {"doc_id": document.doc_id, "row": document.rows[0].id, "stage": "removal_check", "reason": str(check)}
            )
            continue
        if check is not None and check.supported:
            outcome.refuse("still supported without its sentence")
            continue
        details = {
            "removed_sentence": index,
            "removed_text": document.sentences[index].text,
            "checked": check is not None,
        }
        outcome.rows[key_of(document)].append(Written("teacher_removal", 0, item.claim, passage, number, details))
    return outcome


def estimate(documents: list[Document], count: int, settings: TeacherSettings, cached) -> dict:
    """What writing claims for `documents` would send and cost (removal checks come on top: they depend on the
    answers); `cached(request)` tells an answered question."""
    requests = [claims_request(document, count, settings) for document in documents]
    to_send = [request for request in requests if not cached(request)]
    input_tokens = sum(request.estimated_input_tokens() for request in to_send)
    output_tokens = len(to_send) * count * EXPECTED_TOKENS_PER_CLAIM
    return {
        "documents": len(documents),
        "cached": len(requests) - len(to_send),
        "to_send": len(to_send),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd(settings, input_tokens, output_tokens, batch=False),
    }
