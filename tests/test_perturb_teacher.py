"""augment.teacher_claims against a real local OpenAI-compatible server: claims written per document, removals
checked, refused answers counted, failures budgeted and listed, everything cached for a free rerun."""

from __future__ import annotations

import json
import logging

import pytest
from omegaconf import open_dict

from conftest import compose_config
from fake_openai_server import FakeOpenAI
from hakim.data.budget import BudgetExceeded
from hakim.data.dataset_io import read_manifest, read_split
from hakim.data.perturb import is_synthetic
from hakim.data.perturb.written import PROMPT_VERSION
from hakim.data.prepare import prepare

KEY_ENV = "HAKIM_PERTURB_TEST_KEY"
SECRET = "sk-test-perturb-NEVER-WRITTEN-5120"
SPLITS = ("train", "validation", "test")

HOSPITAL = (
    "Hospital Daerah Sik dibuka kepada orang ramai pada 3 Jun. Hospital itu mempunyai 180 katil dan empat dewan "
    "bedah. Seramai 420 kakitangan telah ditempatkan di hospital itu."
)
LIBRARY = (
    "Perpustakaan Awam Seremban dibuka pada 15 Mei dengan 85,000 buah buku. Bangunan empat tingkat itu dibina "
    "dengan kos RM32 juta. Keahlian adalah percuma bagi semua penduduk negeri."
)
# Its first sentence is told twice: cut once, the document still supports the claim, so no removal row is kept.
FAIR = (
    "Pesta Durian Bentong berlangsung selama tiga hari di Dataran Bentong. Kira-kira 65,000 pengunjung hadir "
    "sepanjang pesta itu. Penganjur menjual 42 tan durian. Pesta Durian Bentong berlangsung selama tiga hari di "
    "Dataran Bentong."
)
# The teacher never answers this one usably: its claims are one rejected request, listed and budgeted.
TOWER = (
    "Menara Jam Teluk Intan condong kira-kira lima darjah ke arah barat daya. Menara itu dibina pada tahun 1885. "
    "Ia pernah digunakan sebagai tangki air untuk bandar itu."
)
ROWS = [
    {"passage": HOSPITAL, "claim": "Hospital itu mempunyai 180 katil.", "label": 1},
    {"passage": LIBRARY, "claim": "Perpustakaan itu dibuka pada 15 Mei.", "label": 1},
    {"passage": FAIR, "claim": "Pesta itu berlangsung selama lima hari.", "label": 0},
    {"passage": TOWER, "claim": "Menara itu dibina pada tahun 1885.", "label": 1},
]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ROWS))
    return {
        "mine": {
            "source": "custom",
            "path": str(path),
            "language": "ms",
            "claim_column": "claim",
            "label_column": "label",
        }
    }


def configured(tmp_path, corpus, server, *overrides):
    cfg = compose_config(
        "prepare_data",
        tmp_path,
        tmp_path / "run",
        [
            "corpus=local_files",
            "augment=perturb",
            "augment.teacher_claims=true",
            "augment.claims_per_document=5",
            "augment.max_ratio=null",
            "teacher=openai",
            f"teacher.base_url={server.url}",
            f"teacher.api_key_env={KEY_ENV}",
            "teacher.translate=false",
            "teacher.reasoning=false",
            "teacher.progress=false",
            "teacher.max_retries=1",
            "teacher.backoff_base_s=0.01",
            *overrides,
        ],
    )
    with open_dict(cfg):
        cfg.corpus.sources = corpus
    return cfg


def test_teacher_claims_and_checked_removals_land_in_their_documents_split(tmp_path, corpus, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.INFO)
    with FakeOpenAI() as server:
        assert prepare(configured(tmp_path, corpus, server, "dry_run=true")) == tmp_path / "data" / "local-perturb"
        assert server.total == 0 and "teacher claims for 4 documents: 0 cached, 4 to send" in caplog.text

        server.faults_by_input = {"Menara Jam Teluk Intan": ["bad_schema", "bad_schema"]}
        with pytest.raises(BudgetExceeded, match=r"perturb: claims 1/4 failed.*FAILED"):
            prepare(configured(tmp_path, corpus, server))  # a quarter of the documents lost: over max_reject_fraction
        assert not (tmp_path / "data" / "local-perturb" / "LATEST").exists()
        asked = server.total

        server.reset_counts()
        target = prepare(configured(tmp_path, corpus, server, "max_reject_fraction=0.5"))
        assert server.total == 0  # every answer, and the refused question, came from the cache
        assert asked == 2 + 3 + 3  # claims for 3 documents + 2 tries for the tower, and 3 removal checks

    rows = [row for name in SPLITS for row in read_split(target, name)]
    real = {row.doc_id: row for row in rows if not is_synthetic(row)}
    written = [row for row in rows if is_synthetic(row) and row.extra["synthetic"]["rule"].startswith("teacher_")]
    assert {row.doc_id for row in written} == {
        real_row.doc_id for real_row in real.values() if real_row.passage != TOWER
    }
    for row in written:
        assert row.split == real[row.doc_id].split and row.source == "perturb"
        assert row.extra["synthetic"]["model"] == "gpt-4o-mini" and row.extra["synthetic"]["row"] == real[row.doc_id].id
    claims = sorted(
        (row.passage[:20], row.label, row.claim[:25])
        for row in written
        if row.extra["synthetic"]["rule"] == "teacher_claim"
    )
    assert len(claims) == 3 * 3  # of 5 per document, two are refused by the checks
    assert {label for _, label, _ in claims} == {0, 1}
    removals = [row for row in written if row.extra["synthetic"]["rule"] == "teacher_removal"]
    assert sorted(real[row.doc_id].passage for row in removals) == sorted([HOSPITAL, LIBRARY])
    for row in removals:
        first = real[row.doc_id].passage.split(". ")[0] + "."
        assert row.label == 0 and row.claim == first and first not in row.passage
        assert row.passage == real[row.doc_id].passage[len(first) + 1 :]
        assert row.extra["synthetic"]["removed_sentence"] == 0 and row.extra["synthetic"]["checked"] is True

    manifest = read_manifest(target)
    teacher = manifest["augment"]["teacher"]
    assert teacher["prompt_hash"] == PROMPT_VERSION and teacher["documents_asked"] == 4
    assert teacher["documents_rejected"] == 1 and teacher["answers"] == 3 + 3 and teacher["cost_usd"] > 0
    assert teacher["claims_refused"] == {
        "inconsistent claim stated in the document": 3,
        "sentence number outside the document": 3,
        "still supported without its sentence": 1,
    }
    rules = {
        name: found.get("teacher_claim", 0) + found.get("teacher_removal", 0)
        for name, found in manifest["augment"]["rows"].items()
    }
    assert sum(rules.values()) == len(written)
    rejects = [json.loads(line) for line in (target / "augment_rejects.jsonl").read_text().splitlines()]
    assert [(reject["stage"], reject["row"]) for reject in rejects] == [("claims", "mine-000003")]
    assert "invalid answer" in rejects[0]["reason"] and manifest["rejects"]["augment"] == 1
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
