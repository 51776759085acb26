"""prepare_data.py augment=perturb on the bundled Malay sample: synthetic rows in their documents' splits, named by
rule in each row and counted in manifest.json, deterministic, capped, and refused settings said in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import fields

import pytest
import yaml

from conftest import ROOT, compose_config
from hakim.data.dataset_io import SPLIT_FILES, read_manifest, read_split
from hakim.data.perturb import is_synthetic
from hakim.data.perturb.rules import RULES
from hakim.data.perturb.settings import AugmentError, AugmentSettings
from hakim.data.prepare import prepare

SPLITS = ("train", "validation", "test")


def prepared(tmp_path, *overrides: str):
    target = prepare(compose_config("prepare_data", tmp_path, tmp_path / "run", list(overrides)))
    return target, {name: read_split(target, name) for name in SPLIT_FILES}, read_manifest(target)


@pytest.fixture(scope="module")
def plain_and_augmented(tmp_path_factory):
    root = tmp_path_factory.mktemp("perturb")
    return prepared(root, "eval_per_group=5"), prepared(root, "augment=perturb", "eval_per_group=5")


def test_synthetic_rows_sit_in_their_documents_split_and_name_rule_and_source(plain_and_augmented):
    (plain_dir, plain, _), (target, augmented, manifest) = plain_and_augmented
    assert target.parent.name == "sample-perturb" and plain_dir.parent.name == "sample"  # the plain dataset stays
    real_split = {r.id: r.split for name in SPLITS for r in plain[name]}
    assert {r.id: r.split for name in SPLITS for r in augmented[name] if not is_synthetic(r)} == real_split
    split_of_doc = {r.doc_id: r.split for name in SPLITS for r in plain[name]}
    real = {r.id: r for name in SPLITS for r in plain[name]}
    synthetic = [r for name in SPLITS for r in augmented[name] if is_synthetic(r)]
    by_id = {r.id: r for r in synthetic}
    assert synthetic and len(by_id) == len(synthetic)
    for row in synthetic:
        made = row.extra["synthetic"]
        assert row.split == split_of_doc[row.doc_id] and row.source == "perturb" and row.reasoning is None
        assert made["rule"] in RULES and RULES[made["rule"]].label == row.label
        source_row = real[made["row"]]
        assert (
            source_row.doc_id == row.doc_id
            and source_row.passage == row.passage
            and made["row_source"] == source_row.source
        )
        assert made["sentence_text"] in row.passage and row.extra["origin"] == source_row.extra["origin"]
        partner = by_id[made["pair"]]  # each inconsistent claim comes with the consistent one from its sentence
        assert partner.extra["synthetic"]["sentence"] == made["sentence"] and partner.label == 1 - row.label
        if row.label == 0:
            assert row.claim != made["sentence_text"] and row.claim not in row.passage
    assert manifest["checks"]["documents_in_several_splits"] == 0


def test_the_manifest_counts_rows_per_rule_and_split_and_the_eval_subset_stays_real(plain_and_augmented):
    (_, plain, _), (_, augmented, manifest) = plain_and_augmented
    counted = defaultdict(Counter)
    for name in SPLITS:
        for row in augmented[name]:
            if is_synthetic(row):
                counted[name][row.extra["synthetic"]["rule"]] += 1
    report = manifest["augment"]
    assert report["rows"] == {name: dict(sorted(found.items())) for name, found in sorted(counted.items())}
    assert len({rule for found in counted.values() for rule in found}) == len(RULES)  # every rule made rows
    for name in SPLITS:
        labels = Counter(row.label for row in augmented[name] if is_synthetic(row))
        assert report["labels"][name] == {"0": labels[0], "1": labels[1]} and labels[0] == labels[1]
        assert manifest["splits"][name]["counts"]["perturb/ms/label=0"] == labels[0]
    assert sum(rule["rows_kept"] for rule in report["rules"].values()) == sum(
        sum(found.values()) for found in counted.values()
    )
    assert [row.id for row in augmented["eval"]] == [row.id for row in plain["eval"]]
    rows_per_document = Counter(row.doc_id for name in SPLITS for row in augmented[name] if is_synthetic(row))
    assert max(rows_per_document.values()) <= report["settings"]["max_per_document"]
    real_rows = Counter(row.split for name in SPLITS for row in augmented[name] if not is_synthetic(row))
    assert all(sum(counted[name].values()) <= real_rows[name] for name in SPLITS)  # max_ratio 1.0


def test_the_same_seed_writes_the_same_rows_and_another_seed_others_on_the_same_splits(tmp_path, plain_and_augmented):
    _, (target, augmented, _) = plain_and_augmented
    again, _, _ = prepared(tmp_path / "again", "augment=perturb", "eval_per_group=5")
    assert again.name == target.name  # the version is the content hash of every row
    _, other, _ = prepared(tmp_path / "other", "augment=perturb", "eval_per_group=5", "augment.seed=7")
    claims = {name: {r.claim for r in augmented[name] if is_synthetic(r)} for name in SPLITS}
    assert any(claims[name] != {r.claim for r in other[name] if is_synthetic(r)} for name in SPLITS)
    assert {r.id: r.split for n in SPLITS for r in other[n] if not is_synthetic(r)} == {
        r.id: r.split for n in SPLITS for r in augmented[n] if not is_synthetic(r)
    }


def test_max_ratio_and_max_per_document_cap_the_synthetic_rows(tmp_path):
    _, splits, manifest = prepared(tmp_path, "augment=perturb", "augment.max_ratio=0.25", "augment.max_per_document=4")
    report = manifest["augment"]
    assert sum(report["dropped_by_max_ratio"].values()) > 0
    for name in SPLITS:
        real = sum(not is_synthetic(r) for r in splits[name])
        assert 0 < sum(map(is_synthetic, splits[name])) <= int(0.25 * real)
    # round-robin over documents: a tight cap reaches a document's second pair only after every document's first
    per_document = Counter(r.doc_id for name in SPLITS for r in splits[name] if is_synthetic(r))
    assert set(per_document.values()) == {2}
    _, roomy, _ = prepared(
        tmp_path / "roomy", "augment=perturb", "augment.max_ratio=null", "augment.max_per_document=4"
    )
    per_document = Counter(r.doc_id for name in SPLITS for r in roomy[name] if is_synthetic(r))
    assert max(per_document.values()) == 4 and min(per_document.values()) >= 2


def test_only_synthetic_rows_make_a_held_out_set_of_the_same_documents(tmp_path, plain_and_augmented):
    (_, plain, _), _ = plain_and_augmented
    _, synthetic, manifest = prepared(
        tmp_path,
        "augment=perturb",
        "augment.keep_real_rows=false",
        "augment.rules=[sentence,negation,number]",
        "eval_per_group=5",
    )
    for name in SPLITS:
        assert synthetic[name] and all(map(is_synthetic, synthetic[name]))
        assert {r.doc_id for r in synthetic[name]} <= {r.doc_id for r in plain[name]}
    assert {r.extra["synthetic"]["rule"] for n in SPLITS for r in synthetic[n]} <= {"sentence", "negation", "number"}
    assert synthetic["eval"] and [r.id for r in synthetic["eval"]] == [r.id for r in synthetic["test"]][:5]
    assert manifest["budget"]["sources"]["perturb"]["rows_kept"] == sum(len(synthetic[n]) for n in SPLITS)


def test_real_rows_of_the_listed_sources_stay_and_every_documents_claims_join_them(tmp_path, plain_and_augmented):
    (_, plain, _), (_, augmented, _) = plain_and_augmented
    _, fib_only, manifest = prepared(tmp_path, "augment=perturb", "augment.keep_real_rows=[fib]", "eval_per_group=5")
    for name in SPLITS:
        real = [r for r in fib_only[name] if not is_synthetic(r)]
        assert [r.id for r in real] == [r.id for r in plain[name] if r.source == "fib"]
        synthetic_documents = {r.doc_id for r in fib_only[name] if is_synthetic(r)}
        assert synthetic_documents == {r.doc_id for r in augmented[name] if is_synthetic(r)}
        assert synthetic_documents & {r.doc_id for r in plain[name] if r.source == "boolq"}
    assert fib_only["eval"] and all(r.source == "fib" for r in fib_only["eval"])
    synthetic_rows = sum(is_synthetic(r) for name in SPLITS for r in fib_only[name])
    assert manifest["budget"]["sources"]["perturb"]["rows_kept"] == synthetic_rows


@pytest.mark.parametrize(
    "override, message",
    [
        ("augment.rules=[sentence,negate]", "augment.rules: unknown rule 'negate' (known: sentence, shorter,"),
        ("augment.max_ratio=-1", "augment.max_ratio: must be a number above 0, or null for no cap, got -1"),
        ("augment.splits=[train,dev]", "augment.splits: must list some of train, validation, test"),
        ("augment.max_per_document=0", "augment.max_per_document: must be a whole number at least 1, got 0"),
        ("augment.teacher_claims=true", "augment.teacher_claims=true needs a teacher: add teacher=openai"),
        ("augment.source=fib", "augment.source: 'fib' is a source of the corpus"),
        ("+augment.pairs=3", "augment.pairs: no such setting"),
        ("augment.keep_real_rows=[]", "augment.keep_real_rows: must be true, false or a list of source names"),
        ("augment.keep_real_rows=[fib,squad]", "augment.keep_real_rows: no source 'squad' in the corpus (its sources:"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(tmp_path, override, message):
    with pytest.raises(AugmentError) as refused:
        prepare(compose_config("prepare_data", tmp_path, tmp_path / "run", ["augment=perturb", override]))
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "data" / "sample-perturb" / "LATEST").exists()


def test_prepare_data_says_a_bad_setting_in_one_line_and_exits_1(tmp_path):
    environment = {**os.environ, "HAKIM_ROOT": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "prepare_data.py"), "augment=perturb", "augment.max_words=2"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line or "error" in line]
    assert result.returncode == 1 and len(errors) == 1, result.stderr
    assert "augment.max_words: must be a whole number at least 5, got 2" in errors[0]
    assert not (tmp_path / "data").exists()


def test_the_augment_config_documents_every_setting():
    text = (ROOT / "conf" / "augment" / "perturb.yaml").read_text()
    config = yaml.safe_load(text)
    assert set(config["augment"]) == {item.name for item in fields(AugmentSettings)}
    assert text.startswith("# @package _global_\n# ") and "python prepare_data.py augment=perturb" in text
    lines = text.splitlines()
    settings = [index for index, line in enumerate(lines) if line.startswith("  ") and not line.strip().startswith("#")]
    silent = [
        lines[index] for index in settings if "#" not in lines[index] and not lines[index - 1].strip().startswith("#")
    ]
    assert settings and not silent  # every knob says what it does, on its line or just above it
