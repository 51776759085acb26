"""Leak-free splits: every row of a document (BoolQ passage, FIB document) lands in one split."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import replace

from hakim.data.records import JudgeRecord


def _document_rank(doc_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_document(records: list[JudgeRecord], fractions: dict[str, float], seed: int) -> list[JudgeRecord]:
    """Assign a split to each record so that no doc_id appears in two splits.

    Documents are ordered by a seeded hash (stable when rows are added or removed) and cut by the
    cumulative share of rows, per source, so each source gets the requested proportions.
    """
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6 or any(share < 0 for share in fractions.values()):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    by_source: dict[str, dict[str, list[JudgeRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_source[record.source][record.doc_id].append(record)

    split_of_doc: dict[str, str] = {}
    for documents in by_source.values():
        n_rows = sum(len(rows) for rows in documents.values())
        ordered = sorted(documents, key=lambda doc: _document_rank(doc, seed))
        boundaries, cumulative = [], 0.0
        for name, share in fractions.items():
            cumulative += share
            boundaries.append((name, cumulative * n_rows))
        seen = 0
        for doc in ordered:
            midpoint = seen + len(documents[doc]) / 2
            split_of_doc[doc] = next((name for name, end in boundaries if midpoint <= end), boundaries[-1][0])
            seen += len(documents[doc])
    return [replace(record, split=split_of_doc[record.doc_id]) for record in records]


def shared_documents(records: list[JudgeRecord]) -> dict[str, set[str]]:
    """doc_ids that appear in more than one split (empty when the split is leak-free)."""
    splits_of: dict[str, set[str]] = defaultdict(set)
    for record in records:
        splits_of[record.doc_id].add(record.split)
    return {doc: splits for doc, splits in splits_of.items() if len(splits) > 1}


def evaluation_subset(records: list[JudgeRecord], per_group: int) -> list[JudgeRecord]:
    """The original protocol: the first `per_group` rows of each source × language, in file order."""
    taken: dict[tuple[str, str], int] = defaultdict(int)
    chosen = []
    for record in records:
        key = (record.source, record.language)
        if taken[key] < per_group:
            taken[key] += 1
            chosen.append(record)
    return chosen
