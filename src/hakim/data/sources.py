"""Turn rows from local files (read by hakim.data.files) or the Hugging Face hub into JudgeRecords.

Published schemas are read as they are: BoolQ names the claim `question`, FIB names it `summary`,
both name the label `answer` (bool or 0/1) and may carry a `language` column (`Malay`/`English`).
Every other layout is described by a column mapping in config. Two row layouts exist: `rows` (one
passage, claim and label per row) and `choice_pairs` (one document per row with a list of candidate
claims and the index of the correct one, as in the English FIB on the hub), which becomes one record
per candidate: label 1 for the correct one, 0 for the others, all with the document's doc_id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hakim.data.files import Row, SourceError, read_jsonl, read_rows
from hakim.data.records import BadRowError, JudgeRecord, document_id, parse_label, parse_language, text_problem

CLAIM_COLUMN_BY_SOURCE = {"boolq": "question", "fib": "summary"}
LAYOUTS = ("rows", "choice_pairs")


@dataclass
class SourceSpec:
    """Where one source's rows live and how its columns map onto a JudgeRecord."""

    source: str
    name: str | None = None  # the source's key in conf/dataset, used in messages; defaults to `source`
    path: str | None = None
    hub_id: str | None = None
    hub_config: str | None = None
    hub_split: str = "train"
    language: str | None = None
    passage_column: str = "passage"
    claim_column: str | None = None
    label_column: str = "answer"
    language_column: str = "language"
    source_column: str | None = None  # a column naming each row's task (boolq, fib, ...); None: every row is `source`
    reasoning_column: str = "reasoning"
    limit: int | None = None  # raw rows, before choice_pairs expands them
    columns_extra: list[str] = field(default_factory=list)
    layout: str = "rows"
    choices_column: str = "list_choices"  # choice_pairs: a list of candidate claims (or a JSON list in a CSV cell)
    correct_index_column: str = "lbl"  # choice_pairs: 0-based index of the consistent candidate
    # the column naming each row's document for splitting (default: its passage); a translation points
    # at its original's passage (hakim.data.twins) so a row and its twin land in one split
    document_column: str | None = None

    def __post_init__(self):
        if (self.path is None) == (self.hub_id is None):
            raise SourceError(f"source '{self.label}': set exactly one of `path` or `hub_id`")
        if self.layout not in LAYOUTS:
            raise SourceError(f"source '{self.label}': layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.claim_column is None:
            self.claim_column = CLAIM_COLUMN_BY_SOURCE.get(self.source, "claim")

    @property
    def label(self) -> str:
        return self.name or self.source

    @property
    def origin(self) -> str:
        return self.path if self.path is not None else f"hub:{self.hub_id}[{self.hub_split}]"


@dataclass
class ReadResult:
    records: list[JudgeRecord]
    rejects: list[dict]
    rows_read: int


def iter_raw_rows(spec: SourceSpec) -> Iterator[tuple[str, Row]]:
    """Yield (location, row or BadRowError); the location names the file and line a person would open."""
    if spec.hub_id is not None:
        yield from _iter_hub(spec)
        return
    yield from read_rows(Path(spec.path), spec.label)


def iter_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """(location, row) of a JSON Lines file, raising at the first line that cannot be read."""
    for location, row in read_jsonl(path):
        if isinstance(row, BadRowError):
            raise row
        yield location, row


def _iter_hub(spec: SourceSpec) -> Iterator[tuple[str, dict]]:
    import datasets

    try:
        dataset = datasets.load_dataset(spec.hub_id, spec.hub_config, split=spec.hub_split)
    except ConnectionError:  # offline (HF_HUB_OFFLINE=1 or no network) and not in the local cache
        raise SourceError(
            f"source '{spec.label}': {spec.origin} is not in the local Hugging Face cache "
            "and the hub cannot be reached; "
            f"run once with network to cache it, or save its rows to a file and use it with "
            f"corpus.sources.{spec.label}.hub_id=null corpus.sources.{spec.label}.path=FILE "
            "(any JSONL/JSON/CSV/Parquet; conf/corpus/local_files.yaml shows the column mapping)"
        ) from None
    for index, row in enumerate(dataset):
        yield f"{spec.origin}:row {index}", row


def _text(row: dict, column: str, location: str) -> str:
    if column not in row:
        raise BadRowError(location, column, f"column missing (row has: {', '.join(sorted(row))})")
    problem = text_problem(row[column])
    if problem:
        raise BadRowError(location, column, problem)
    return row[column].strip()


def _language(spec: SourceSpec, row: dict, location: str) -> str:
    if spec.language is not None:
        return parse_language(spec.language, location)
    if spec.language_column in row:
        return parse_language(row[spec.language_column], location)
    raise BadRowError(location, spec.language_column, "column missing and no `language` set in the source config")


def _record(
    spec: SourceSpec, location: str, row: dict, record_id: str, passage: str, claim: str, label: int
) -> JudgeRecord:
    language = _language(spec, row, location)
    source = _text(row, spec.source_column, location) if spec.source_column else spec.source
    reasoning = row.get(spec.reasoning_column)
    if reasoning is not None and (not isinstance(reasoning, str) or not reasoning.strip()):
        reasoning = None
    return JudgeRecord(
        id=f"{spec.source}-{language}-{record_id}",
        source=source,
        language=language,
        passage=passage,
        claim=claim,
        label=label,
        doc_id=document_id(source, _text(row, spec.document_column, location) if spec.document_column else passage),
        reasoning=reasoning.strip() if reasoning else None,
        extra={"origin": location, **{name: row.get(name) for name in spec.columns_extra}},
    )


def row_to_record(spec: SourceSpec, location: str, row: dict, index: int) -> JudgeRecord:
    passage = _text(row, spec.passage_column, location)
    claim = _text(row, spec.claim_column, location)
    if spec.label_column not in row:
        raise BadRowError(location, spec.label_column, "column missing")
    label = parse_label(row[spec.label_column], location, spec.label_column)
    return _record(spec, location, row, f"{index:06d}", passage, claim, label)


def choice_row_to_records(spec: SourceSpec, location: str, row: dict, index: int) -> list[JudgeRecord]:
    """One record per candidate claim; ids end in `.<candidate index>` so each stays traceable to its row."""
    passage = _text(row, spec.passage_column, location)
    column = spec.choices_column
    if column not in row:
        raise BadRowError(location, column, f"column missing (row has: {', '.join(sorted(row))})")
    choices = row[column]
    if isinstance(choices, str) and choices.strip().startswith("["):
        try:
            choices = json.loads(choices)
        except json.JSONDecodeError as error:
            raise BadRowError(location, column, f"not a valid JSON list ({error.msg})") from None
    if not isinstance(choices, (list, tuple)) or len(choices) < 2:
        raise BadRowError(location, column, f"expected a list of at least two candidate claims, got {choices!r:.80}")
    if not all(isinstance(choice, str) and choice.strip() for choice in choices):
        raise BadRowError(location, column, "every candidate claim must be non-empty text")
    correct = _choice_index(row, spec.correct_index_column, len(choices), location)
    return [
        _record(spec, location, row, f"{index:06d}.{number}", passage, choice.strip(), int(number == correct))
        for number, choice in enumerate(choices)
    ]


def _choice_index(row: dict, column: str, n_choices: int, location: str) -> int:
    if column not in row:
        raise BadRowError(location, column, "column missing")
    value = row[column]
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if value == -1:
        raise BadRowError(
            location, column, "index -1 means unlabelled; only rows with a known correct candidate can be used"
        )
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n_choices:
        raise BadRowError(
            location, column, f"must be the index (0 to {n_choices - 1}) of the correct candidate, got {value!r}"
        )
    return value


def read_source(spec: SourceSpec, on_bad_row: str = "error") -> ReadResult:
    """Read every row; bad rows raise (on_bad_row='error') or are returned as rejects ('reject')."""
    if on_bad_row not in ("error", "reject"):
        raise ValueError(f"on_bad_row must be 'error' or 'reject', got {on_bad_row!r}")
    records, rejects, rows_read = [], [], 0
    for index, (location, row) in enumerate(iter_raw_rows(spec)):
        if spec.limit is not None and rows_read >= spec.limit:
            break
        rows_read += 1
        try:
            if isinstance(row, BadRowError):
                raise row
            if spec.layout == "choice_pairs":
                records.extend(choice_row_to_records(spec, location, row, index))
            else:
                records.append(row_to_record(spec, location, row, index))
        except BadRowError as error:
            if on_bad_row == "error":
                raise
            rejects.append({"location": error.location, "field": error.field_name, "problem": error.problem})
    return ReadResult(records=records, rejects=rejects, rows_read=rows_read)
