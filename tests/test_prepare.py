"""prepare(): the manifest matches the data, the teacher's work is recorded, bad rows and suspicious rows are
reported."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import replace

import pyarrow.parquet as pq
import pytest
from omegaconf import open_dict

from conftest import compose_config
from fake_openai_server import MARKER, FakeOpenAI
from hakim.data.checks import ENGLISH_FUNCTION_WORDS, MALAY_FUNCTION_WORDS, extreme_length_ratio, still_english
from hakim.data.dataset_io import COLUMNS, SPLIT_FILES, column_fingerprints, read_manifest, read_split
from hakim.data.prepare import prepare
from hakim.data.records import BadRowError, JudgeRecord
from hakim.data.sources import SourceSpec, read_source
from hakim.data.teacher.requests import TEMPLATE_VERSION

KEY_ENV = "HAKIM_PREPARE_TEST_KEY"
SECRET = "sk-test-prepare-NEVER-WRITTEN-7311"
SPLITS = ("train", "validation", "test")

RIVER = "The Rajang is the longest river in Malaysia and it flows for about 563 kilometres through Sarawak."
BOOLQ_EN = [
    {"passage": RIVER, "question": "is the rajang the longest river in malaysia", "answer": True},
    {"passage": RIVER, "question": "does the rajang flow through sabah", "answer": False},  # repeated passage
    {
        "passage": "Mount Kinabalu is the highest mountain in Malaysia and it stands in Sabah.",
        "question": "is mount kinabalu in sarawak",
        "answer": False,
    },
    {
        "passage": "Penang is an island state that is linked to the mainland by two bridges.",
        "question": "is penang linked to the mainland by a bridge",
        "answer": True,
    },
]
FIB_HUB = [  # the English FIB hub layout: one document, candidate summaries, index of the consistent one
    {
        "input": "The council said that the new bridge will open in May and it will carry four lanes of traffic.",
        "list_choices": [
            "The bridge will open in May with four lanes.",
            "The bridge will open in June with two lanes.",
        ],
        "lbl": 0,
    },
    {
        "input": "The team won the cup after a late goal, and the coach said that it was the best day of his career.",
        "list_choices": ["The team lost the cup in the last minute.", "A late goal won the team the cup."],
        "lbl": 1,
    },
    {
        "input": "Heavy rain in the north of the state forced the closure of three schools on Monday.",
        "list_choices": ["Three schools closed on Monday because of heavy rain.", "Ten schools closed on Friday."],
        "lbl": 0,
    },
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def compose_with_sources(tmp_path, sources: dict, *overrides: str):
    cfg = compose_config("prepare_data", tmp_path, tmp_path / "run", ["corpus=local_files", *overrides])
    with open_dict(cfg):
        cfg.corpus.sources = sources
    return cfg


def expected_counts(records: list[JudgeRecord]) -> dict[str, int]:
    return dict(Counter(f"{r.source}/{r.language}/label={r.label}" for r in records))


def test_sample_manifest_matches_the_data_read_back(tmp_path):
    target = prepare(compose_config("prepare_data", tmp_path, tmp_path / "run", ["eval_per_group=5"]))

    manifest = read_manifest(target)
    splits = {name: read_split(target, name) for name in SPLIT_FILES}
    for name, records in splits.items():
        entry = manifest["splits"][name]
        assert entry["rows"] == len(records) > 0
        assert entry["counts"] == expected_counts(records)
        table = pq.read_table(target / f"{name}.parquet")
        for column in COLUMNS:  # recomputed from the file, as COLUMN_FINGERPRINT describes
            stored = "".join(json.dumps(value, ensure_ascii=False) + "\n" for value in table.column(column).to_pylist())
            assert entry["column_fingerprints"][column] == hashlib.sha256(stored.encode()).hexdigest(), (name, column)
    documents = {name: {r.doc_id for r in splits[name]} for name in SPLITS}
    assert not documents["train"] & documents["validation"]
    assert not documents["train"] & documents["test"] and not documents["validation"] & documents["test"]
    taken, expected_eval = Counter(), []
    for record in splits["test"]:
        taken[(record.source, record.language)] += 1
        if taken[(record.source, record.language)] <= 5:
            expected_eval.append(record.id)
    assert [r.id for r in splits["eval"]] == expected_eval and len(expected_eval) < len(splits["test"])
    checks = manifest["checks"]
    assert checks["documents_in_several_splits"] == 0
    assert checks["still_english"]["count"] == 0 and checks["empty_text"]["count"] == 0  # the sample is Malay
    assert manifest["rejects"]["read"] == 0 and (target / "rejects.jsonl").read_text() == ""


def test_column_fingerprints_show_which_column_changed():
    records = [
        JudgeRecord(
            id=f"r{i}",
            source="boolq",
            language="ms",
            passage=f"Petikan {i}.",
            claim=f"adakah {i}",
            label=i % 2,
            doc_id=f"d{i}",
        )
        for i in range(3)
    ]
    changed = records[:1] + [replace(records[1], claim="adakah lain")] + records[2:]
    before, after = column_fingerprints(records), column_fingerprints(changed)
    assert [name for name in COLUMNS if before[name] != after[name]] == ["claim"]


@pytest.fixture
def english_sources(tmp_path) -> dict:
    return {
        "boolq_en": {
            "source": "boolq",
            "path": str(write_jsonl(tmp_path / "boolq_en.jsonl", BOOLQ_EN)),
            "language": "en",
        },
        "fib_en": {
            "source": "fib",
            "path": str(write_jsonl(tmp_path / "fib_hub.jsonl", FIB_HUB)),
            "language": "en",
            "layout": "choice_pairs",
            "passage_column": "input",
        },
    }


def test_teacher_translates_explains_and_is_accounted_for(tmp_path, english_sources, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.WARNING)
    with FakeOpenAI() as server:
        teacher = [
            "teacher=openai",
            f"teacher.base_url={server.url}",
            f"teacher.api_key_env={KEY_ENV}",
            "teacher.progress=false",
            "teacher.max_retries=1",
            "teacher.backoff_base_s=0.01",
        ]
        dry = compose_with_sources(
            tmp_path, english_sources, *teacher, "dry_run=true", f"output_dir={tmp_path / 'dry'}"
        )
        assert prepare(dry) == tmp_path / "dry" and server.total == 0
        assert not (tmp_path / "dry" / "LATEST").exists()

        unanswerable = FIB_HUB[2]["list_choices"][1]
        server.faults_by_input = {unanswerable: ["bad_schema"] * 2}  # both tries fail: that row is rejected
        target = prepare(
            compose_with_sources(tmp_path, english_sources, *teacher, "eval_per_group=2", "max_reject_fraction=0.2")
        )

        assert server.by_input[FIB_HUB[0]["input"]] == server.by_input[RIVER] == 1  # repeated passages asked once
        requests_sent = server.total
    manifest = read_manifest(target)
    rows = [record for name in SPLITS for record in read_split(target, name)]
    assert len(rows) == len(BOOLQ_EN) + 2 * len(FIB_HUB) - 1
    assert MARKER + unanswerable not in {r.claim for r in rows}
    assert all(r.language == "ms" and r.passage.startswith(MARKER) and r.reasoning for r in rows)
    assert sum(
        manifest["splits"][name]["counts"].get(group, 0)
        for name in SPLITS
        for group in ("boolq/ms/label=1", "boolq/ms/label=0", "fib/ms/label=1", "fib/ms/label=0")
    ) == len(rows)
    teacher = manifest["teacher"]
    assert teacher["model"] == "gpt-4o-mini" and teacher["prompt_hash"] == TEMPLATE_VERSION
    assert teacher["this_run"]["requests"] == requests_sent > 0
    assert teacher["this_run"]["failed_attempts"] == {"invalid answer": 2}
    assert teacher["answers"] == requests_sent - 2  # every answer kept once; the refused ones are not in it
    assert teacher["input_tokens"] > 0 and teacher["output_tokens"] > 0
    assert 0 < teacher["cost_usd"] < teacher["this_run"]["cost_usd"]
    assert teacher["rejects"] == manifest["rejects"]["teacher"] == 1
    rejected = json.loads((target / "teacher_rejects.jsonl").read_text())
    assert rejected["id"] == "fib_en-000002.1" and rejected["stage"] == "translate" and rejected["source"] == "fib_en"
    assert rejected["claim"] == unanswerable and rejected["location"] == f"{english_sources['fib_en']['path']}:3"
    checks = manifest["checks"]
    # The fake teacher only prefixes "[ms] ": its "translations" are English, and the check says so.
    assert checks["still_english"]["count"] == len(rows) and len(checks["still_english"]["examples"]) == min(
        10, len(rows)
    )
    assert any("check still_english" in message for message in caplog.messages)
    assert checks["extreme_length_ratio"] == {
        **checks["extreme_length_ratio"],
        "count": 0,
        "texts_measured": 2 * len(rows),
    }
    assert all(r.extra["source_passage_chars"] == len(r.passage) - len(MARKER) for r in rows)
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "teacher_cache.sqlite" for path in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path


def test_unlabelled_rows_are_rejected_with_file_line_and_field(tmp_path):
    good = {"passage": "Kuala Lumpur ialah ibu negara Malaysia.", "question": "adakah kl ibu negara", "answer": True}
    rows = [good, {**good, "answer": -1}, {**good, "passage": "Putrajaya ialah pusat pentadbiran.", "answer": 0}]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    sources = {"mine": {"source": "boolq", "path": str(path), "language": "ms"}}

    with pytest.raises(BadRowError, match=rf"{path}:2: field 'answer': .*unlabelled"):
        prepare(compose_with_sources(tmp_path, sources))
    target = prepare(compose_with_sources(tmp_path, sources, "on_bad_row=reject", "max_reject_fraction=0.5"))

    rejects = [json.loads(line) for line in (target / "rejects.jsonl").read_text().splitlines()]
    assert [(r["source"], r["location"], r["field"]) for r in rejects] == [("mine", f"{path}:2", "answer")]
    assert "unlabelled" in rejects[0]["problem"]
    manifest = read_manifest(target)
    assert manifest["rejects"]["read"] == manifest["sources"]["mine"]["rejected"] == 1
    assert sum(manifest["splits"][name]["rows"] for name in SPLITS) == 2


def test_choice_pairs_become_one_record_per_candidate(tmp_path):
    path = write_jsonl(tmp_path / "fib.jsonl", FIB_HUB[:2])
    records = read_source(
        SourceSpec("fib", path=str(path), language="en", layout="choice_pairs", passage_column="input")
    ).records
    assert [(r.claim, r.label) for r in records] == [
        (FIB_HUB[0]["list_choices"][0], 1),
        (FIB_HUB[0]["list_choices"][1], 0),
        (FIB_HUB[1]["list_choices"][0], 0),
        (FIB_HUB[1]["list_choices"][1], 1),
    ]
    assert records[0].doc_id == records[1].doc_id != records[2].doc_id
    assert len({r.id for r in records}) == 4 and records[1].extra["origin"] == f"{path}:1"
    csv_path = tmp_path / "fib.csv"
    csv_path.write_text('input,list_choices,lbl\nDokumen.,"[""Satu."", ""Dua.""]",1\n')
    from_csv = read_source(
        SourceSpec("fib", path=str(csv_path), language="ms", layout="choice_pairs", passage_column="input")
    )
    assert [(r.claim, r.label) for r in from_csv.records] == [("Satu.", 0), ("Dua.", 1)]


@pytest.mark.parametrize(
    "change, field, problem",
    [
        ({"lbl": 2}, "lbl", "index (0 to 1)"),
        ({"lbl": -1}, "lbl", "unlabelled"),
        ({"lbl": None}, "lbl", "column missing"),
        ({"list_choices": None}, "list_choices", "column missing"),
        ({"list_choices": ["Only one."]}, "list_choices", "at least two"),
        ({"list_choices": ["One.", " "]}, "list_choices", "non-empty"),
        ({"input": ""}, "input", "empty"),
    ],
)
def test_bad_choice_rows_name_file_line_and_field(tmp_path, change, field, problem):
    bad = {key: value for key, value in {**FIB_HUB[0], **change}.items() if value is not None}
    path = write_jsonl(tmp_path / "fib.jsonl", [FIB_HUB[1], bad])
    spec = SourceSpec("fib", path=str(path), language="en", layout="choice_pairs", passage_column="input")
    with pytest.raises(BadRowError) as caught:
        read_source(spec)
    assert f"{path}:2" in str(caught.value) and f"'{field}'" in str(caught.value) and problem in str(caught.value)
    rejected = read_source(spec, on_bad_row="reject")
    assert len(rejected.records) == 2 and [r["field"] for r in rejected.rejects] == [field]


def ms_record(record_id: str, passage: str, claim: str, language: str = "ms", **extra) -> JudgeRecord:
    return JudgeRecord(
        id=record_id,
        source="boolq",
        language=language,
        passage=passage,
        claim=claim,
        label=1,
        doc_id=f"doc-{record_id}",
        extra=extra,
    )


def test_still_english_flags_untranslated_rows_labelled_malay_only():
    assert not ENGLISH_FUNCTION_WORDS & MALAY_FUNCTION_WORDS
    records = [
        ms_record("english", RIVER, "adakah sungai rajang sungai terpanjang"),
        ms_record(
            "english_claim", "Sungai Rajang ialah sungai terpanjang di Malaysia.", "is the rajang the longest river"
        ),
        ms_record(
            "malay",
            "Sungai Rajang ialah sungai terpanjang di Malaysia dan mengalir di Sarawak.",
            "adakah sungai rajang terletak di sarawak",
        ),
        ms_record(
            "malay_quoting_english",
            "Akhbar The Star melaporkan bahawa jambatan itu dibuka pada bulan Mei.",
            "adakah jambatan itu dibuka",
        ),
        ms_record("english_row", RIVER, "is the rajang in sarawak", language="en"),
    ]
    found = still_english(records)
    assert found["count"] == 2 and found["examples"] == ["english", "english_claim"]


def test_extreme_length_ratio_compares_with_the_english_source():
    records = [
        ms_record("fine", "x" * 110, "y" * 24, source_passage_chars=100, source_claim_chars=20),
        ms_record("cut_short", "x" * 30, "y" * 24, source_passage_chars=100, source_claim_chars=20),
        ms_record("padded", "x" * 100, "y" * 60, source_passage_chars=100, source_claim_chars=20),
        ms_record("never_translated", "x" * 5, "y" * 5),
    ]
    found = extreme_length_ratio(records)
    assert found["examples"] == ["cut_short", "padded"] and found["texts_measured"] == 6
