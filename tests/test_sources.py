"""Readers accept the published schemas and refuse bad rows naming file, line and field."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hakim.data.files import SourceError
from hakim.data.records import BadRowError
from hakim.data.sources import SourceSpec, read_source

GOOD_BOOLQ = {
    "passage": "Kuala Lumpur ialah ibu negara.",
    "question": "adakah kl ibu negara",
    "answer": True,
    "language": "Malay",
}
GOOD_FIB = {"passage": "Dokumen berita.", "summary": "Ringkasan.", "answer": 0, "language": "English"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_published_boolq_and_fib_schemas_become_records(tmp_path):
    boolq = read_source(SourceSpec("boolq", path=str(write_jsonl(tmp_path / "b.jsonl", [GOOD_BOOLQ]))))
    fib = read_source(SourceSpec("fib", path=str(write_jsonl(tmp_path / "f.jsonl", [GOOD_FIB]))))
    assert (boolq.records[0].claim, boolq.records[0].label, boolq.records[0].language) == (
        "adakah kl ibu negara",
        1,
        "ms",
    )
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
        (
            {"passage": {"teks": "Kuala Lumpur ialah ibu negara."}},
            "passage",
            "must be text, got a JSON object: {'teks'",
        ),
        ({"passage": float("nan")}, "passage", "must be text, got NaN"),
        ({"question": ["adakah", "kl"]}, "question", "must be text, got a list"),
        ({"question": 7}, "question", "must be text, got a number: 7"),
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


BAD_BYTE = b"\xff"


def read_both_ways(spec: SourceSpec):
    """(the error on_bad_row=error raises, the result on_bad_row=reject returns)."""
    with pytest.raises(BadRowError) as caught:
        read_source(spec)
    return caught.value, read_source(spec, on_bad_row="reject")


def test_bytes_that_are_not_utf8_are_named_by_line_in_both_modes(tmp_path):
    lines = [json.dumps(GOOD_BOOLQ).encode()] * 25
    lines[20] = (
        json.dumps({**GOOD_BOOLQ, "passage": "Teks caf\u00e9."}).encode().replace(b"caf\\u00e9", b"caf" + BAD_BYTE)
    )
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    error, rejected = read_both_ways(SourceSpec("boolq", path=str(path)))

    assert str(error).startswith(f"{path}:21: field '<line>': byte 0xff at column")
    assert "not UTF-8" in str(error)
    assert len(rejected.records) == 24 and [r["location"] for r in rejected.rejects] == [f"{path}:21"]


def test_a_bad_byte_in_a_csv_names_its_line_and_column(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(
        b"passage,question,answer,language\nTeks.,adakah ya,1,Malay\nTeks,adakah caf" + BAD_BYTE + b",0,Malay\n"
    )

    error, rejected = read_both_ways(SourceSpec("boolq", path=str(path)))

    assert str(error).startswith(f"{path}:3: field 'question': byte 0xff is not UTF-8")
    assert len(rejected.records) == 1 and rejected.rejects[0]["field"] == "question"


def test_a_truncated_last_line_is_a_reject_not_an_abort(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(GOOD_BOOLQ) + "\n" + json.dumps(GOOD_BOOLQ)[:30])

    error, rejected = read_both_ways(SourceSpec("boolq", path=str(path)))

    assert f"{path}:2: field '<line>': not valid JSON" in str(error) and "ends mid-row" in str(error)
    assert len(rejected.records) == 1 and rejected.rejects[0]["location"] == f"{path}:2"


@pytest.mark.parametrize("content", ["", "\n\n", "passage,question,answer\n"])
def test_an_empty_file_is_an_error_naming_the_source_and_file(tmp_path, content):
    path = tmp_path / ("rows.csv" if "," in content else "rows.jsonl")
    path.write_text(content)
    for mode in ("error", "reject"):
        with pytest.raises(SourceError, match=rf"source 'mine': {path} (is empty|holds no rows)"):
            read_source(SourceSpec("boolq", name="mine", path=str(path)), on_bad_row=mode)


def test_a_missing_file_names_the_configured_source(tmp_path):
    with pytest.raises(SourceError, match=rf"source 'mine': no file at {tmp_path / 'nope.jsonl'}"):
        read_source(SourceSpec("boolq", name="mine", path=str(tmp_path / "nope.jsonl")))


def test_a_utf8_bom_is_stripped_from_csv_and_jsonl(tmp_path):
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("passage,question,answer,language\nTeks.,adakah ya,1,Malay\n", encoding="utf-8-sig")
    jsonl_path = tmp_path / "rows.jsonl"
    jsonl_path.write_text(json.dumps(GOOD_BOOLQ) + "\n", encoding="utf-8-sig")
    assert read_source(SourceSpec("boolq", path=str(csv_path))).records[0].passage == "Teks."
    assert read_source(SourceSpec("boolq", path=str(jsonl_path))).records[0].passage == GOOD_BOOLQ["passage"]


def test_a_json_array_is_read_row_by_row(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([GOOD_BOOLQ, {**GOOD_BOOLQ, "answer": -1}, {**GOOD_BOOLQ, "answer": 0}], indent=2))

    error, rejected = read_both_ways(SourceSpec("boolq", path=str(path)))

    assert str(error).startswith(f"{path}:row 1: field 'answer'")
    assert len(rejected.records) == 2 and rejected.records[1].extra["origin"] == f"{path}:row 2"
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"passage": "Teks."},\n  {"passage": \n')
    with pytest.raises(SourceError, match=rf"{broken}:4: not a valid JSON array"):
        read_source(SourceSpec("boolq", path=str(broken)), on_bad_row="reject")


def test_a_hub_source_offline_and_not_cached_says_how_to_use_a_local_file(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", True)
    spec = SourceSpec("boolq", name="mine", hub_id="hakim-tests/never-cached", hub_split="train")
    with pytest.raises(SourceError) as caught:
        read_source(spec)
    message = str(caught.value)
    assert message.startswith(
        "source 'mine': hub:hakim-tests/never-cached[train] is not in the local Hugging Face cache"
    )
    assert "corpus.sources.mine.hub_id=null corpus.sources.mine.path=FILE" in message and "\n" not in message
