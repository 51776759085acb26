"""Rows from local files (JSON Lines, a JSON array, CSV, Parquet), each named by the place a person would open.

A row that cannot be read (bytes that are not UTF-8, a line that is not JSON, a file cut off mid-row) is
yielded as a BadRowError in its place instead of being raised, so `on_bad_row=reject` can list it and go
on; a file that cannot be read at all (missing, empty, an unknown type, a broken JSON array) raises
SourceError, whatever on_bad_row says.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from hakim.data.records import BadRowError
from hakim.errors import HakimError

BOM = "\ufeff"
READABLE = (".jsonl", ".json", ".csv", ".parquet")


class SourceError(HakimError, ValueError):
    """A source that yields no rows at all; the message names the source and the file."""


Row = dict | BadRowError


def file_identity(path: Path) -> dict:
    """sha256 and size of an input file, so a manifest says exactly which bytes a dataset came from."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def read_rows(path: Path, source: str) -> Iterator[tuple[str, Row]]:
    """(location, row or BadRowError) for every row; `source` is the configured name, for messages."""
    if not path.exists():
        raise SourceError(f"source '{source}': no file at {path}")
    if path.suffix not in READABLE:
        raise SourceError(f"source '{source}': {path} has type {path.suffix!r}; use one of {', '.join(READABLE)}")
    if path.stat().st_size == 0:
        raise SourceError(f"source '{source}': {path} is empty")
    readers = {".jsonl": read_jsonl, ".json": _read_json, ".csv": _read_csv, ".parquet": _read_parquet}
    found = False
    for location, row in readers[path.suffix](path):
        found = True
        yield location, row
    if not found:
        raise SourceError(f"source '{source}': {path} holds no rows (only blank lines or a header)")


def read_jsonl(path: Path) -> Iterator[tuple[str, Row]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            location = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                yield location, _not_utf8(location, "<line>", raw, error)
                continue
            if number == 1:
                line = line.removeprefix(BOM)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                cut = "; the file ends mid-row (cut off while writing?)" if not raw.endswith(b"\n") else ""
                yield (
                    location,
                    BadRowError(location, "<line>", f"not valid JSON ({error.msg}, column {error.colno}){cut}"),
                )
                continue
            yield location, row if isinstance(row, dict) else BadRowError(location, "<line>", "expected a JSON object")


def _not_utf8(location: str, field_name: str, raw: bytes, error: UnicodeDecodeError) -> BadRowError:
    byte = raw[error.start]
    return BadRowError(
        location, field_name, f"byte 0x{byte:02x} at column {error.start + 1} is not UTF-8; re-save the file as UTF-8"
    )


def _read_json(path: Path) -> Iterator[tuple[str, Row]]:
    """A `.json` file holding an array of objects; one holding JSON Lines is read as JSON Lines."""
    data = path.read_bytes()
    if not data.lstrip().removeprefix(BOM.encode()).lstrip().startswith(b"["):
        yield from read_jsonl(path)
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SourceError(
            f"{path}:{line}: byte 0x{data[error.start]:02x} is not UTF-8; re-save the file as UTF-8"
        ) from None
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise SourceError(
            f"{path}:{error.lineno}: not a valid JSON array ({error.msg}, column {error.colno})"
        ) from None
    for index, item in enumerate(items):
        location = f"{path}:row {index}"
        yield location, item if isinstance(item, dict) else BadRowError(location, "<row>", "expected a JSON object")


def _read_csv(path: Path) -> Iterator[tuple[str, Row]]:
    # surrogateescape keeps a bad byte in place, so the row and column holding it can be named
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            location = f"{path}:{reader.line_num}"
            yield location, _csv_row(location, row)


def _csv_row(location: str, row: dict) -> Row:
    for column, value in row.items():
        for text in (column, value):
            if not isinstance(text, str):
                continue
            bad = next((index for index, char in enumerate(text) if "\udc80" <= char <= "\udcff"), None)
            if bad is not None:
                byte = ord(text[bad]) - 0xDC00
                return BadRowError(location, str(column), f"byte 0x{byte:02x} is not UTF-8; re-save the file as UTF-8")
    if None in row:
        return BadRowError(location, "<row>", f"more cells than the header's {len(row) - 1} columns")
    return row


def _read_parquet(path: Path) -> Iterator[tuple[str, Row]]:
    import pyarrow.parquet as pq

    for index, row in enumerate(pq.read_table(path).to_pylist()):
        yield f"{path}:row {index}", row
