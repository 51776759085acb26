"""Splits never share a document; the evaluation subset follows the original protocol."""

from hakim.data.records import JudgeRecord
from hakim.data.splits import evaluation_subset, shared_documents, split_by_document


def records(n_docs: int, per_doc: int, source: str = "fib") -> list[JudgeRecord]:
    return [
        JudgeRecord(
            id=f"{source}-{d}-{i}",
            source=source,
            language="ms",
            passage=f"doc {d}",
            claim=f"claim {i}",
            label=i % 2,
            doc_id=f"{source}-{d}",
        )
        for d in range(n_docs)
        for i in range(per_doc)
    ]


def test_no_document_in_two_splits_and_shares_respected():
    rows = records(200, 2) + records(300, 1, source="boolq")
    assigned = split_by_document(rows, {"train": 0.7, "validation": 0.1, "test": 0.2}, seed=1)
    assert shared_documents(assigned) == {}
    for source, total in (("fib", 400), ("boolq", 300)):
        train = sum(1 for r in assigned if r.source == source and r.split == "train")
        assert abs(train / total - 0.7) < 0.03


def test_split_is_deterministic_for_a_seed_and_changes_with_it():
    rows = records(100, 2)
    fractions = {"train": 0.8, "test": 0.2}
    first = [r.split for r in split_by_document(rows, fractions, seed=3)]
    assert first == [r.split for r in split_by_document(rows, fractions, seed=3)]
    assert first != [r.split for r in split_by_document(rows, fractions, seed=4)]


def test_evaluation_subset_takes_first_n_per_source_and_language():
    rows = records(5, 2) + records(5, 2, source="boolq")
    chosen = evaluation_subset(rows, per_group=3)
    assert [r.id for r in chosen] == ["fib-0-0", "fib-0-1", "fib-1-0", "boolq-0-0", "boolq-0-1", "boolq-1-0"]
