"""Quality checks on prepared rows: counted in the manifest with example ids, never used to drop a row.

The still-English check is a heuristic, not a language identifier: it counts very common function
words of each language in a text labelled Malay. Content words (names, terms, numbers) are ignored, so
a Malay passage quoting an English title is not flagged, while an untranslated sentence is.
"""

from __future__ import annotations

import re
from collections import defaultdict

from hakim.data.records import JudgeRecord
from hakim.data.splits import shared_documents

MAX_EXAMPLES = 10  # ids listed per check; the count is always complete

ENGLISH_FUNCTION_WORDS = frozenset(
    "the of and to in is was are were be been that this these those for it its with as on by from at or an "
    "which who what when where does did do has have had not but his her their they he she will would there "
    "than into can could should".split()
)
MALAY_FUNCTION_WORDS = frozenset(
    "yang dan di ke dari daripada dengan untuk pada ini itu adalah ialah tidak akan telah sudah oleh dalam "
    "kepada atau juga bahawa sebagai adakah merupakan mereka dia ia kerana tetapi boleh lebih bagi seperti "
    "antara selepas sebelum apabila jika masih hanya tersebut ada".split()
)
# A text looks English when at least this many English function words make up at least this share of
# all function words found; two words catch a short untranslated question ("is the ...").
STILL_ENGLISH_MIN_WORDS = 2
STILL_ENGLISH_MIN_SHARE = 0.6
# Malay usually runs 0.9-1.4x the characters of its English source; far outside means a cut or padded translation.
LENGTH_RATIO_BOUNDS = (0.5, 2.0)
SOURCE_CHARS_KEYS = {"passage": "source_passage_chars", "claim": "source_claim_chars"}

_WORD = re.compile(r"[a-z]+")


def looks_english(text: str) -> bool:
    words = _WORD.findall(text.lower())
    english = sum(word in ENGLISH_FUNCTION_WORDS for word in words)
    malay = sum(word in MALAY_FUNCTION_WORDS for word in words)
    return english >= STILL_ENGLISH_MIN_WORDS and english / (english + malay) >= STILL_ENGLISH_MIN_SHARE


def _found(ids: list[str], **details) -> dict:
    return {"count": len(ids), "examples": ids[:MAX_EXAMPLES], **details}


def still_english(records: list[JudgeRecord]) -> dict:
    flagged = [r.id for r in records if r.language == "ms" and (looks_english(r.passage) or looks_english(r.claim))]
    rule = (
        f">= {STILL_ENGLISH_MIN_WORDS} English function words and >= {STILL_ENGLISH_MIN_SHARE:.0%} of the "
        "English + Malay function words in the passage or claim of a row labelled 'ms'"
    )
    return _found(flagged, rule=rule)


def empty_text(records: list[JudgeRecord]) -> dict:
    flagged = [
        r.id
        for r in records
        if not r.passage.strip() or not r.claim.strip() or (r.reasoning is not None and not r.reasoning.strip())
    ]
    return _found(flagged, rule="passage or claim empty, or reasoning present but blank")


def extreme_length_ratio(records: list[JudgeRecord]) -> dict:
    """Translated rows carry their English lengths in `extra` (written by prepare before the teacher runs)."""
    low, high = LENGTH_RATIO_BOUNDS
    flagged, measured = [], 0
    for record in records:
        if record.language != "ms":
            continue
        ratios = [
            len(getattr(record, name)) / record.extra[key]
            for name, key in SOURCE_CHARS_KEYS.items()
            if record.extra.get(key)
        ]
        measured += len(ratios)
        if any(not low <= ratio <= high for ratio in ratios):
            flagged.append(record.id)
    rule = f"translated length / English length outside [{low}, {high}] for passage or claim"
    return _found(flagged, rule=rule, texts_measured=measured)


def duplicates(splits: dict[str, list[JudgeRecord]]) -> tuple[dict, dict]:
    """(repeated passage + claim pairs anywhere, pairs found in more than one split); examples are row ids."""
    rows_of: dict[tuple[str, str], list[JudgeRecord]] = defaultdict(list)
    for records in splits.values():
        for record in records:
            rows_of[(record.passage, record.claim)].append(record)
    repeated = [r.id for rows in rows_of.values() if len(rows) > 1 for r in rows[1:]]
    across = [rows[0].id for rows in rows_of.values() if len({r.split for r in rows}) > 1]
    return (
        _found(repeated, rule="same passage and claim as an earlier row"),
        _found(across, rule="same passage and claim in more than one split"),
    )


def repeated_rows(records: list[JudgeRecord]) -> list[tuple[JudgeRecord, JudgeRecord]]:
    """(row, the earlier row it repeats) for every row with the same passage and claim as an earlier one."""
    first: dict[tuple[str, str], JudgeRecord] = {}
    pairs = []
    for record in records:
        earlier = first.setdefault((record.passage, record.claim), record)
        if earlier is not record:
            pairs.append((record, earlier))
    return pairs


def quality_checks(splits: dict[str, list[JudgeRecord]]) -> dict:
    """Every check over train/validation/test (the eval subset repeats test rows, so it is left out)."""
    kept = {name: records for name, records in splits.items() if name != "eval"}
    everything = [record for records in kept.values() for record in records]
    repeated, across = duplicates(kept)
    return {
        "documents_in_several_splits": len(shared_documents(everything)),
        "rows_with_reasoning": sum(1 for record in everything if record.reasoning),
        "duplicate_rows": repeated,
        "duplicates_across_splits": across,
        "still_english": still_english(everything),
        "empty_text": empty_text(everything),
        "extreme_length_ratio": extreme_length_ratio(everything),
    }


def summary_lines(checks: dict) -> tuple[str, list[str]]:
    """A one-line overview of every count, and one line per check that found something."""
    counts = {name: found["count"] if isinstance(found, dict) else found for name, found in checks.items()}
    overview = "checks: " + ", ".join(f"{name}={count}" for name, count in counts.items())
    problems = [
        f"check {name}: {found['count']} rows ({found['rule']}), e.g. {', '.join(found['examples'][:3])}"
        for name, found in checks.items()
        if isinstance(found, dict) and found["count"]
    ]
    return overview, problems
