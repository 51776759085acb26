"""The one normalized record every Hakim component reads, and its validation."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, fields

from hakim.errors import HakimError

LANGUAGES = ("ms", "en")
LANGUAGE_ALIASES = {"ms": "ms", "malay": "ms", "melayu": "ms", "bm": "ms", "en": "en", "english": "en"}
SPLITS = ("train", "validation", "test")


class BadRowError(HakimError, ValueError):
    """A row that cannot become a record; the message names file, line and field."""

    def __init__(self, location: str, field_name: str, problem: str):
        self.location = location
        self.field_name = field_name
        self.problem = problem
        super().__init__(f"{location}: field '{field_name}': {problem}")


@dataclass(frozen=True)
class JudgeRecord:
    """A passage, a claim about it, and whether the claim holds (1) or not (0).

    For BoolQ the claim is the yes/no question and 1 means "yes"; for FIB the claim is a summary
    and 1 means "consistent with the document".
    """

    id: str
    source: str
    language: str
    passage: str
    claim: str
    label: int
    doc_id: str
    split: str | None = None
    reasoning: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict, location: str = "<dict>") -> JudgeRecord:
        names = {f.name for f in fields(cls)}
        unknown = set(row) - names
        if unknown:
            raise BadRowError(location, sorted(unknown)[0], "not a JudgeRecord field")
        record = cls(**row)
        validate_record(record, location)
        return record


def text_problem(value) -> str | None:
    """Why a value cannot be a passage, claim or name (None when it can), saying what it is instead of text: a
    nested object or a NaN says more than "empty" about where the file went wrong."""
    if isinstance(value, str):
        return None if value.strip() else "empty"
    if value is None:
        return "missing or empty"
    if isinstance(value, float) and math.isnan(value):
        return "must be text, got NaN (how pandas writes an empty cell)"
    kind = {dict: "a JSON object", list: "a list", bool: "true/false", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
    return f"must be text, got {kind}: {value!r:.60}"


def document_id(source: str, passage: str) -> str:
    """Stable id for a document, so repeated passages share one id (and one split)."""
    digest = hashlib.sha1(passage.strip().encode("utf-8")).hexdigest()[:16]
    return f"{source}-doc-{digest}"


def parse_label(value, location: str, field_name: str = "answer") -> int:
    """Accept bool, 0/1 ints, '0'/'1', 'true'/'false'; refuse everything else, never coerce."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, float) and value in (0.0, 1.0):
        return int(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return 1 if value.strip().lower() in ("1", "true") else 0
    if value == -1 or value == "-1":
        raise BadRowError(
            location,
            field_name,
            "label -1 means unlabelled (e.g. a SuperGLUE test row); only 0/1 can train or evaluate a judge",
        )
    raise BadRowError(location, field_name, f"label must be 0/1 or true/false, got {value!r}")


def parse_language(value, location: str) -> str:
    key = str(value).strip().lower()
    if key not in LANGUAGE_ALIASES:
        raise BadRowError(location, "language", f"unknown language {value!r}; expected one of Malay/English/ms/en")
    return LANGUAGE_ALIASES[key]


def validate_record(record: JudgeRecord, location: str) -> None:
    for name in ("id", "source", "passage", "claim", "doc_id"):
        problem = text_problem(getattr(record, name))
        if problem:
            raise BadRowError(location, name, problem)
    if record.language not in LANGUAGES:
        raise BadRowError(location, "language", f"must be one of {LANGUAGES}, got {record.language!r}")
    if record.label not in (0, 1) or isinstance(record.label, bool):
        raise BadRowError(location, "label", f"must be 0 or 1, got {record.label!r}")
    if record.split is not None and record.split not in SPLITS:
        raise BadRowError(location, "split", f"must be one of {SPLITS}, got {record.split!r}")
    if record.reasoning is not None and not isinstance(record.reasoning, str):
        raise BadRowError(location, "reasoning", "must be text when present")
