"""Teacher answers on disk, one committed row per answer, so a killed run resumes without paying twice.

Questions that got no usable answer are kept too, with the reason: a rerun reproduces the same dataset
without asking them again, and `retry_rejects=true` asks exactly those again."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from hakim.data.teacher.requests import TEMPLATE_VERSION


@dataclass(frozen=True)
class CachedAnswer:
    output: str
    input_tokens: int
    output_tokens: int


class TeacherCache:
    """sqlite in WAL mode: each put is its own transaction, and readers never block the writer."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL survives a killed process; only a power cut could drop the last answers, which are then re-asked.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, kind TEXT, template TEXT, input TEXT,"
            " output TEXT, input_tokens INTEGER, output_tokens INTEGER, via TEXT, created REAL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS failures "
            "(key TEXT PRIMARY KEY, kind TEXT, input TEXT, reason TEXT, created REAL)"
        )

    def get(self, key: str) -> CachedAnswer | None:
        row = self._db.execute(
            "SELECT output, input_tokens, output_tokens FROM answers WHERE key = ?", (key,)
        ).fetchone()
        return CachedAnswer(*row) if row else None

    def put(
        self, key: str, kind: str, input_text: str, output: str, input_tokens: int, output_tokens: int, via: str
    ) -> None:
        """Store a validated answer; `input_text` is kept so every answer can be audited against its question."""
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, kind, TEMPLATE_VERSION, input_text, output, input_tokens, output_tokens, via, time.time()),
        )
        self._db.execute("DELETE FROM failures WHERE key = ?", (key,))

    def usage(self, keys: set[str]) -> list[tuple[int, int, str]]:
        """(input tokens, output tokens, via) of each stored answer among `keys`, whichever run paid for it."""
        found = []
        for key in keys:
            row = self._db.execute(
                "SELECT input_tokens, output_tokens, via FROM answers WHERE key = ?", (key,)
            ).fetchone()
            if row:
                found.append(row)
        return found

    def failure(self, key: str) -> str | None:
        """Why this question failed in an earlier run, or None."""
        row = self._db.execute("SELECT reason FROM failures WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put_failure(self, key: str, kind: str, input_text: str, reason: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)", (key, kind, input_text, reason, time.time())
        )

    def close(self) -> None:
        self._db.close()
