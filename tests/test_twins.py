"""Translated rows are linked to their originals and split with them: no twin on the other side of a split."""

import json

from hakim.data.prepare import read_all_sources
from hakim.data.splits import split_by_document
from hakim.data.twins import TWIN_COLUMN, link_files, match_passages

MALAY = [
    (
        "Pada tahun 1994, Komuniti Arang Batu dan Keluli Eropah menyertai EEA bersama 17 negeri.",
        "adakah eea wujud pada 1994",
        1,
    ),
    (
        "Amanda Clement menjadi pengadil di Hudson, South Dakota, sejak 1905.",
        "adakah amanda clement seorang pengadil",
        1,
    ),
    (
        "Guitar Center membeli Musician's Friend pada tahun 2000 dengan harga $50 juta.",
        "adakah guitar center membeli musician's friend",
        1,
    ),
    (
        "William J. Brennan dilantik oleh Presiden Dwight D. Eisenhower pada tahun 1956.",
        "adakah brennan dilantik oleh truman",
        0,
    ),
    ("Kucing itu tidur di atas tikar sepanjang hari.", "adakah kucing itu tidur", 1),
]
ENGLISH = [
    ("Amanda Clement umpired in Hudson, South Dakota, from 1905.", "was amanda clement an umpire", 1),
    ("In 1994 the European Coal and Steel Community joined the EEA with 17 states.", "did the eea exist in 1994", 1),
    (
        "William J. Brennan was appointed by President Dwight D. Eisenhower in 1956.",
        "was brennan appointed by truman",
        0,
    ),
    ("Guitar Center bought Musician's Friend in 2000 for $50 million.", "did guitar center buy musician's friend", 1),
    ("The cat slept on the mat all day.", "did the cat sleep", 1),  # no shared rare word: cannot be linked
]


def _write(path, rows, language):
    path.write_text(
        "".join(json.dumps({"passage": p, "question": q, "answer": a, "language": language}) + "\n" for p, q, a in rows)
    )
    return path


def test_each_translation_finds_its_original_or_says_why_not():
    matches = match_passages([p for p, _, _ in MALAY], [p for p, _, _ in ENGLISH], min_score=1.0, min_ratio=2.0)
    for (english, _, _), expected in zip(ENGLISH[:4], (1, 0, 3, 2), strict=True):
        assert matches[english].original == MALAY[expected][0]
    cat = matches[ENGLISH[4][0]]
    assert cat.original is None and "min_score" in cat.reason


def test_linked_twins_share_a_split_and_unlinked_rows_are_listed(tmp_path):
    malay = _write(tmp_path / "ms.jsonl", MALAY * 8, "Malay")  # repeated rows: one document each, several rows
    english = _write(tmp_path / "en.jsonl", ENGLISH, "English")
    summary = link_files(malay, english, tmp_path / "en_linked.jsonl", min_score=1.0, min_ratio=2.0)
    assert summary["linked"] == 4 and summary["unmatched"] == 1
    unmatched = [json.loads(line) for line in (tmp_path / "en_linked.unmatched.jsonl").read_text().splitlines()]
    assert unmatched[0]["location"] == f"{english}:5" and unmatched[0]["row"]["passage"].startswith("The cat")
    linked = [json.loads(line) for line in (tmp_path / "en_linked.jsonl").read_text().splitlines()]
    assert all(row[TWIN_COLUMN] in {p for p, _, _ in MALAY} for row in linked)

    records, _, _ = read_all_sources(
        {
            "boolq_ms": {"source": "boolq", "path": str(malay)},
            "boolq_en": {"source": "boolq", "path": str(tmp_path / "en_linked.jsonl"), "document_column": TWIN_COLUMN},
        },
        on_bad_row="error",
    )
    splits_seen = set()
    for seed in range(6):
        split = split_by_document(records, {"train": 0.4, "validation": 0.2, "test": 0.4}, seed)
        split_of_passage = {record.passage: record.split for record in split if record.language == "ms"}
        splits_seen |= set(split_of_passage.values())
        for record in split:
            if record.language == "en":
                twin = next(row[TWIN_COLUMN] for row in linked if row["passage"] == record.passage)
                assert record.split == split_of_passage[twin]
    assert splits_seen == {"train", "validation", "test"}
