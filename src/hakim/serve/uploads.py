"""An uploaded file of rows → items to judge, read by the readers `evaluate.py rows=` uses (JSON Lines, a JSON
array, CSV, Parquet), with the same column names by default and the same `file:line: field 'x': problem`
messages. Every bad row is named at once, so a person fixes the file in one go."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePath

from hakim.data.files import READABLE, SourceError, read_rows
from hakim.data.records import BadRowError

MAX_PROBLEMS_SHOWN = 20


class BadUpload(ValueError):
    """The file cannot be judged as sent; the message names each row and field to fix."""


@dataclass(frozen=True)
class Columns:
    passage_column: str = "passage"
    claim_column: str = "claim"
    task_column: str | None = None  # a column naming each row's task; None: every row is `task`
    task: str = "default"
    language_column: str = "language"  # returned with each verdict when the column is there


@dataclass(frozen=True)
class UploadedRow:
    location: str
    passage: str
    claim: str
    task: str
    language: str | None


def _text(row: dict, column: str, location: str) -> str:
    if column not in row:
        raise BadRowError(location, column, f"column missing (row has: {', '.join(sorted(row))})")
    value = row[column]
    if not isinstance(value, str) or not value.strip():
        raise BadRowError(location, column, "empty" if isinstance(value, str) or value is None else "not text")
    return value


def read_upload(data: bytes, filename: str, columns: Columns, max_rows: int) -> list[UploadedRow]:
    name = PurePath(filename or "upload").name
    if PurePath(name).suffix not in READABLE:
        raise BadUpload(f"{name}: upload a file ending in one of {', '.join(READABLE)}")
    with tempfile.TemporaryDirectory(prefix="hakim-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        rows, problems = [], []
        try:
            for location, row in read_rows(path, name):
                location = location.replace(f"{folder}/", "")
                try:
                    if isinstance(row, BadRowError):
                        raise BadRowError(location, row.field_name, row.problem)
                    task = _text(row, columns.task_column, location) if columns.task_column else columns.task
                    language = row.get(columns.language_column)
                    rows.append(
                        UploadedRow(
                            location,
                            _text(row, columns.passage_column, location),
                            _text(row, columns.claim_column, location),
                            task,
                            language if isinstance(language, str) else None,
                        )
                    )
                except BadRowError as problem:
                    problems.append(str(problem))
                if len(rows) + len(problems) > max_rows:
                    raise BadUpload(f"{name}: more than {max_rows} rows (serve max_file_rows); split the file")
        except SourceError as error:
            raise BadUpload(str(error).replace(f"{folder}/", "")) from None
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        raise BadUpload(f"{len(problems)} bad rows: " + "; ".join(shown) + more)
    return rows
