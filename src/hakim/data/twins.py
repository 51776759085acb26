"""Link the rows of a translated set to their originals, so a row and its translation share a split.

The shared BoolQ files hold the same questions in Malay and in English. Split independently, an
English row can sit in train while its Malay twin sits in test, and a judge trained on both would
have seen the test answer. Translations keep names, numbers and many loanwords, so each translated
passage is matched to the original passage with which it shares the most rare words (weighted by
inverse document frequency). A match is kept only when it is clear: its score is at least
`min_score` and `min_ratio` times the runner-up's. Kept rows get a column naming the original
passage (point the source's `document_column` at it, conf/corpus/real_rows_bilingual.yaml);
rows without a clear match are written to a separate file with the reason, never silently dropped.

python -m hakim.cli.twins --original PATH/boolq-malay-validation.jsonl \
    --translation PATH/boolq-english-validation.jsonl --out data/boolq-english-linked.jsonl
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from hakim.data.files import read_rows
from hakim.data.records import BadRowError
from hakim.file_writes import jsonl_line

TWIN_COLUMN = "twin_passage"
_WORD = re.compile(r"\w+", re.UNICODE)


def anchor_words(text: str) -> set[str]:
    """Lower-cased words that survive translation often enough to be evidence: numbers and longer words."""
    return {
        word for word in (w.lower() for w in _WORD.findall(text)) if len(word) >= 4 or any(c.isdigit() for c in word)
    }


@dataclass(frozen=True)
class TwinMatch:
    original: str | None  # the original passage, or None when no clear match
    score: float
    runner_up: float
    reason: str | None = None


def match_passages(
    originals: list[str], translations: list[str], min_score: float = 12.0, min_ratio: float = 2.0
) -> dict[str, TwinMatch]:
    """For each distinct translated passage, its original passage (or why none was chosen)."""
    original_words = {passage: anchor_words(passage) for passage in dict.fromkeys(originals)}
    frequency = Counter(word for words in original_words.values() for word in words)
    total = len(original_words)
    weight = {word: math.log(total / count) for word, count in frequency.items() if count <= max(2, total // 50)}
    postings: dict[str, list[str]] = defaultdict(list)
    for passage, words in original_words.items():
        for word in words:
            if word in weight:
                postings[word].append(passage)
    matches = {}
    for translated in dict.fromkeys(translations):
        scores: dict[str, float] = defaultdict(float)
        for word in anchor_words(translated):
            for passage in postings.get(word, ()):
                scores[passage] += weight[word]
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:2] + [(None, 0.0), (None, 0.0)]
        (best, score), (_, runner_up) = ranked[0], ranked[1]
        if best is None or score < min_score:
            matches[translated] = TwinMatch(None, score, runner_up, f"best score {score:.1f} < min_score {min_score}")
        elif score < min_ratio * runner_up:
            matches[translated] = TwinMatch(
                None, score, runner_up, f"best score {score:.1f} not {min_ratio}x the runner-up's {runner_up:.1f}"
            )
        else:
            matches[translated] = TwinMatch(best, score, runner_up)
    return matches


def _read(path: Path, name: str) -> list[tuple[str, dict]]:
    """(file:line, row) of every row, through the readers prepare_data.py uses (and their messages)."""
    rows = []
    for location, row in read_rows(path, name):
        if isinstance(row, BadRowError):
            raise row
        if not isinstance(row.get("passage"), str):
            raise BadRowError(location, "passage", "missing or not text")
        rows.append((location, row))
    return rows


def link_files(original: Path, translation: Path, out: Path, min_score: float, min_ratio: float) -> dict:
    originals, translated = _read(original, "original"), _read(translation, "translation")
    matches = match_passages(
        [row["passage"] for _, row in originals], [row["passage"] for _, row in translated], min_score, min_ratio
    )
    unmatched_path = out.with_name(out.stem + ".unmatched.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = 0
    with out.open("w", encoding="utf-8") as linked, unmatched_path.open("w", encoding="utf-8") as unmatched:
        for location, row in translated:
            match = matches[row["passage"]]
            if match.original is None:
                unmatched.write(jsonl_line({"location": location, "reason": match.reason, "row": row}))
                continue
            linked.write(jsonl_line({**row, TWIN_COLUMN: match.original}))
            kept += 1
    summary = {
        "translation_rows": len(translated),
        "linked": kept,
        "unmatched": len(translated) - kept,
        "distinct_originals_linked": len({m.original for m in matches.values() if m.original}),
        "out": str(out),
        "unmatched_file": str(unmatched_path),
    }
    return summary
