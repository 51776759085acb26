"""The failure budget: a teacher that does not answer, or a file of bad rows, never becomes the LATEST dataset."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys

import pytest
from omegaconf import open_dict

from conftest import ROOT, compose_config
from fake_openai_server import MARKER, FakeOpenAI
from hakim.data.budget import BudgetExceeded
from hakim.data.dataset_io import read_manifest, read_split
from hakim.data.files import SourceError
from hakim.data.prepare import prepare

KEY_ENV = "HAKIM_BUDGET_TEST_KEY"
ROWS = [
    {
        "passage": f"Passage {n} says that the river {n} floods every spring.",
        "claim": f"River {n} floods in spring.",
        "label": n % 2,
    }
    for n in range(12)
]


@pytest.fixture
def rows_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return path


def local_overrides(path, *more: str) -> list[str]:
    return ["corpus=local_files", f"corpus.sources.mine.path={path}", "corpus.sources.mine.language=en", *more]


def teacher_overrides(url: str) -> list[str]:
    return [
        "teacher=openai",
        f"teacher.base_url={url}",
        f"teacher.api_key_env={KEY_ENV}",
        "teacher.progress=false",
        "teacher.reasoning=false",
        "teacher.max_retries=0",
        "teacher.backoff_base_s=0.01",
    ]


def run_prepare(workspace, *overrides: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HAKIM_ROOT": str(workspace), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "prepare_data.py"), *overrides],
        cwd=workspace,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_dead_or_failing_endpoint_exits_non_zero_and_leaves_latest_alone(tmp_path, rows_file):
    published = prepare(compose_config("prepare_data", tmp_path, tmp_path / "run", local_overrides(rows_file)))
    latest = tmp_path / "data" / "local" / "LATEST"
    assert latest.read_text().strip() == published.name
    with socket.socket() as closed:  # bound, never listening: every connection is refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
        failed = run_prepare(tmp_path, *local_overrides(rows_file, *teacher_overrides(url)))

    assert failed.returncode == 1
    output = failed.stdout + failed.stderr
    assert f"teacher endpoint {url} did not answer" in output and "Traceback" not in output
    assert latest.read_text().strip() == published.name

    with FakeOpenAI() as server:
        server.faults_by_input = {"": ["500"] * len(ROWS)}  # up, but every answer is an error
        overrides = local_overrides(rows_file, *teacher_overrides(server.url))
        failed = run_prepare(tmp_path, *overrides)
    assert failed.returncode == 1
    assert "mine: read 0/12 failed, translate 12/12 failed, 0 rows kept: FAILED" in failed.stdout + failed.stderr
    assert latest.read_text().strip() == published.name
    manifest = read_manifest(next((tmp_path / "data" / "local").glob("*-failed")))
    source = manifest["sources"]["mine"]
    assert (source["sha256"], source["bytes"]) == (
        hashlib.sha256(rows_file.read_bytes()).hexdigest(),
        rows_file.stat().st_size,
    )
    provenance = manifest["provenance"]
    assert provenance["overrides"] == overrides
    assert len(provenance["code"]["commit"]) == 40 and provenance["started"] <= provenance["finished"]


def test_an_endpoint_that_is_not_an_openai_api_exits_1_in_one_line_naming_the_setting(tmp_path, rows_file):
    with FakeOpenAI(garbage="html") as server:
        failed = run_prepare(tmp_path, *local_overrides(rows_file, *teacher_overrides(server.url)))

    assert failed.returncode == 1
    errors = [
        line for line in (failed.stdout + failed.stderr).splitlines() if "ERROR" in line or line.startswith("error")
    ]
    assert len(errors) == 1 and f"teacher endpoint {server.url} is not an OpenAI-compatible API" in errors[0]
    assert "teacher.base_url" in errors[0] and "Traceback" not in failed.stdout + failed.stderr


def test_rows_lost_past_the_budget_are_kept_with_their_text_and_asked_again_on_retry(tmp_path, rows_file):
    lost = ROWS[3]["claim"]
    with FakeOpenAI() as server:
        server.faults_by_input = {lost: ["500"]}
        cfg = compose_config(
            "prepare_data", tmp_path, tmp_path / "run", [*local_overrides(rows_file), *teacher_overrides(server.url)]
        )
        with pytest.raises(
            BudgetExceeded, match=r"mine: read 0/12 failed, translate 1/12 failed, 11 rows kept: FAILED"
        ):
            prepare(cfg)
        assert not (tmp_path / "data" / "local" / "LATEST").exists()
        failed_dir = next((tmp_path / "data" / "local").glob("*-failed"))
        rejects = [json.loads(line) for line in (failed_dir / "teacher_rejects.jsonl").read_text().splitlines()]
        assert [(r["source"], r["stage"], r["location"], r["claim"], r["label"]) for r in rejects] == [
            ("mine", "translate", f"{rows_file}:4", lost, 1)
        ]
        assert "HTTP 500" in rejects[0]["reason"]
        assert read_manifest(failed_dir)["budget"]["passed"] is False

        server.reset_counts()
        with pytest.raises(BudgetExceeded):
            prepare(cfg)  # a rerun reuses the recorded failure: nothing is sent
        assert server.total == 0

        target = prepare(
            compose_config(
                "prepare_data",
                tmp_path,
                tmp_path / "run2",
                [*local_overrides(rows_file), *teacher_overrides(server.url), "retry_rejects=true"],
            )
        )
        assert dict(server.by_input) == {lost: 1}  # exactly the failed question, once
    assert (tmp_path / "data" / "local" / "LATEST").read_text().strip() == target.name
    rows = [record for split in ("train", "validation", "test") for record in read_split(target, split)]
    assert len(rows) == len(ROWS) and MARKER + lost in {r.claim for r in rows}
    assert read_manifest(target)["budget"]["passed"] is True


def test_a_source_with_few_enough_rejects_passes(tmp_path, rows_file):
    bad = tmp_path / "some_bad.jsonl"
    bad.write_text(
        "".join(json.dumps({**row, "label": -1 if n == 0 else row["label"]}) + "\n" for n, row in enumerate(ROWS))
    )
    over = compose_config("prepare_data", tmp_path, tmp_path / "run", [*local_overrides(bad), "on_bad_row=reject"])
    with pytest.raises(BudgetExceeded, match=r"mine: read 1/12 failed, 11 rows kept: FAILED \(read lost 8%"):
        prepare(over)
    within = compose_config(
        "prepare_data",
        tmp_path,
        tmp_path / "run",
        [*local_overrides(bad), "on_bad_row=reject", "max_reject_fraction=0.1"],
    )
    manifest = read_manifest(prepare(within))
    assert manifest["budget"]["sources"]["mine"]["read"] == {"failed": 1, "total": 12}


def test_a_source_whose_every_row_is_rejected_fails_with_its_rejects_written(tmp_path, rows_file):
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text("".join(json.dumps({**row, "label": -1}) + "\n" for row in ROWS[:3]))
    cfg = compose_config("prepare_data", tmp_path, tmp_path / "run", [*local_overrides(rows_file), "on_bad_row=reject"])
    with open_dict(cfg):
        cfg.corpus.sources.theirs = {**cfg.corpus.sources.mine, "path": str(unlabelled)}

    with pytest.raises(BudgetExceeded) as raised:
        prepare(cfg)

    assert str(raised.value).splitlines()[:2] == [
        "mine: read 0/12 failed, 12 rows kept: ok",
        "theirs: read 3/3 failed, 0 rows kept: FAILED (read lost 100%; no rows left; max_reject_fraction=0.02)",
    ]
    failed_dir = next((tmp_path / "data" / "local").glob("*-failed"))
    rejects = [json.loads(line) for line in (failed_dir / "rejects.jsonl").read_text().splitlines()]
    assert [(r["source"], r["location"], r["field"]) for r in rejects] == [
        ("theirs", f"{unlabelled}:{n}", "label") for n in (1, 2, 3)
    ]


def test_an_empty_file_beside_a_good_one_stops_the_run_naming_it(tmp_path, rows_file):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cfg = compose_config("prepare_data", tmp_path, tmp_path / "run", local_overrides(rows_file))
    with open_dict(cfg):
        cfg.corpus.sources.theirs = {**cfg.corpus.sources.mine, "path": str(empty)}
    with pytest.raises(SourceError, match=rf"source 'theirs': {empty} is empty"):
        prepare(cfg)
    assert not (tmp_path / "data" / "local").exists()


def test_a_dry_run_warns_of_a_failing_source_and_writes_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, "sk-unused")
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text("".join(json.dumps({**row, "label": -1}) + "\n" for row in ROWS[:3]))
    with FakeOpenAI() as server:
        cfg = compose_config(
            "prepare_data",
            tmp_path,
            tmp_path / "run",
            [*local_overrides(unlabelled, *teacher_overrides(server.url)), "on_bad_row=reject", "dry_run=true"],
        )
        prepare(cfg)
        assert server.total == 0
    assert any(
        r.levelname == "WARNING" and r.getMessage().startswith("mine: read 3/3 failed, 0 rows kept: FAILED")
        for r in caplog.records
    )
    assert not (tmp_path / "data" / "local").exists() or not any((tmp_path / "data" / "local").glob("*/manifest.json"))
