"""Writing files so that nothing reads half of one: every file a later run or stage reads is written here."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path


def write_atomically(path: str | Path, content: str | bytes) -> None:
    """Write `content` to `path` so that a reader, or a run killed midway, finds the old file or the new one
    whole, never half: written beside it under a name of this process's own (DDP ranks may write the same
    file at once), then renamed over it."""
    path = Path(path)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    if isinstance(content, bytes):
        temporary.write_bytes(content)
    else:
        temporary.write_text(content, encoding="utf-8")
    os.replace(temporary, path)


def jsonl_line(row: dict) -> str:
    """One JSON Lines record; non-ASCII (Malay, names) kept as written."""
    return json.dumps(row, ensure_ascii=False) + "\n"


def jsonl(rows: Iterable[dict]) -> str:
    return "".join(jsonl_line(row) for row in rows)
