"""Readers accept the published schemas and refuse bad rows naming file, line and field."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hakim.data.records import BadRowError
from hakim.data.sources import SourceSpec, read_source

GOOD_BOOLQ = {"passage": "Kuala Lumpur ialah ibu negara.", "question": "adakah kl ibu negara", "answer": True, "language": "Malay"}
GOOD_FIB = {"passage": "Dokumen berita.", "summary": "Ringkasan.", "answer": 0, "language": "English"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_published_boolq_and_fib_schemas_become_records(tmp_path):
    boolq = read_source(SourceSpec("boolq", path=str(write_jsonl(tmp_path / "b.jsonl", [GOOD_BOOLQ]))))
    fib = read_source(SourceSpec("fib", path=str(write_jsonl(tmp_path / "f.jsonl", [GOOD_FIB]))))
    assert (boolq.records[0].claim, boolq.records[0].label, boolq.records[0].language) == ("adakah kl ibu negara", 1, "ms")
    assert (fib.records[0].claim, fib.records[0].label, fib.records[0].language) == ("Ringkasan.", 0, "en")
    assert boolq.records[0].doc_id.startswith("boolq-doc-")


def test_same_passage_gets_same_document_id(tmp_path):
    rows = [GOOD_FIB, {**GOOD_FIB, "summary": "Lain.", "answer": 1}]
    records = read_source(SourceSpec("fib", path=str(write_jsonl(tmp_path / "f.jsonl", rows)))).records
    assert records[0].doc_id == records[1].doc_id and records[0].id != records[1].id


def test_csv_and_parquet_read_like_jsonl(tmp_path):
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("passage,question,answer,language\nTeks.,adakah ya,1,Malay\nTeks.,adakah tidak,0,Malay\n")
    parquet_path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD_BOOLQ]), parquet_path)
    assert [r.label for r in read_source(SourceSpec("boolq", path=str(csv_path))).records] == [1, 0]
    assert read_source(SourceSpec("boolq", path=str(parquet_path))).records[0].label == 1


@pytest.mark.parametrize(
    "change, field, problem",
    [
        ({"passage": None}, "passage", "column missing"),
        ({"passage": "   "}, "passage", "empty"),
        ({"question": ""}, "question", "empty"),
        ({"answer": -1}, "answer", "unlabelled"),
        ({"answer": 2}, "answer", "must be 0/1"),
        ({"answer": "maybe"}, "answer", "must be 0/1"),
        ({"language": "Klingon"}, "language", "unknown language"),
    ],
)
def test_each_kind_of_bad_row_names_file_line_and_field(tmp_path, change, field, problem):
    bad = {key: value for key, value in {**GOOD_BOOLQ, **change}.items() if value is not None}
    path = write_jsonl(tmp_path / "rows.jsonl", [GOOD_BOOLQ, bad])
    with pytest.raises(BadRowError) as caught:
        read_source(SourceSpec("boolq", path=str(path)))
    message = str(caught.value)
    assert f"{path}:2" in message and f"'{field}'" in message and problem in message


def test_reject_mode_counts_every_bad_row_and_keeps_the_good(tmp_path):
    rows = [GOOD_BOOLQ, {**GOOD_BOOLQ, "answer": -1}, {**GOOD_BOOLQ, "passage": ""}, GOOD_BOOLQ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    result = read_source(SourceSpec("boolq", path=str(path)), on_bad_row="reject")
    assert len(result.records) == 2 and result.rows_read == 4
    assert [(r["location"], r["field"]) for r in result.rejects] == [(f"{path}:2", "answer"), (f"{path}:3", "passage")]


def test_invalid_json_line_is_reported(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(GOOD_BOOLQ) + "\n{not json\n")
    with pytest.raises(BadRowError, match=r"rows.jsonl:2: field '<line>': not valid JSON"):
        read_source(SourceSpec("boolq", path=str(path)))
