"""Runs are reproducible from their saved config; W&B (offline) gets config and metrics, follows WANDB_*, and
its failure does not stop training; no file a run writes holds a secret."""

import csv
import json
import logging
import os
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, compose_config
from hakim.eval.evaluation import evaluate
from hakim.train.fit import train
from hakim.wandb_mode import wandb_mode

SHORT = [
    "data.max_length=160",
    "data.batch_size=4",
    "lora.r=4",
    "trainer.max_steps=6",
    "trainer.limit_val_batches=2",
    "lora.dropout=0.1",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
]


def losses(run_dir):
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return [row["train/loss"] for row in csv.DictReader(handle) if row.get("train/loss")]


def offline_record(run_dir) -> bytes:
    """The bytes of the one offline W&B run under run_dir (what `wandb sync` would upload)."""
    runs = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1, runs
    # W&B's service process can still be writing the file when run.finish() returns (seen once in a
    # full-suite run: only the file header was there); read it once it has stopped growing
    record, deadline = runs[0].read_bytes(), time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(0.25)
        again = runs[0].read_bytes()
        if again == record and len(record) > 64:
            break
        record = again
    return record


def test_rerun_from_a_saved_config_gives_the_same_losses(workspace, tiny_model_dir, sample_dataset, tmp_path):
    train(compose_config("train", workspace, tmp_path / "first", SHORT))
    train(compose_config("train", workspace, tmp_path / "again", [f"rerun={tmp_path / 'first'}"]))
    first, again = losses(tmp_path / "first"), losses(tmp_path / "again")
    assert len(first) == 6 and first == again
    assert (tmp_path / "again" / "checkpoints" / "last.ckpt").exists()
    assert list((tmp_path / "first" / "checkpoints").glob("*"))


def test_the_first_run_in_a_fresh_model_cache_trains_the_adapter_later_identical_runs_train(
    workspace, sample_dataset, tmp_path
):
    fresh = [*SHORT, "trainer.max_steps=2", f"paths.cache_dir={tmp_path / 'cache'}"]
    train(compose_config("train", workspace, tmp_path / "first", fresh))  # builds the tiny model into the empty cache
    train(compose_config("train", workspace, tmp_path / "again", fresh))
    first, again = (load_file(tmp_path / run / "adapter" / "adapter_model.safetensors") for run in ("first", "again"))
    assert first.keys() == again.keys()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert losses(tmp_path / "first") == losses(tmp_path / "again")


def test_wandb_offline_run_gets_the_config_without_secrets(
    workspace, tiny_model_dir, sample_dataset, tmp_path, monkeypatch
):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_config(
        "train",
        workspace,
        tmp_path / "run",
        [
            *SHORT,
            "logger=wandb",
            "logger.wandb.log_adapter=true",
            "trainer.max_steps=-1",
            "+teacher_api_key=sk-should-not-leak",
        ],
    )
    train(cfg)
    record = offline_record(tmp_path / "run")
    assert b"lora" in record and b"train/loss" in record and b"train/grad_norm" in record
    assert b"<redacted>" in record and b"sk-should-not-leak" not in record
    assert b"val/predictions" in record and b"adapter_model.safetensors" in record


def test_evaluation_tables_and_plots_go_to_wandb(workspace, sample_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose_config(
        "evaluate",
        workspace,
        tmp_path / "eval",
        ["judge=majority", f"dataset_dir={sample_dataset}", "wandb.enabled=true", "wandb.mode=offline"],
    )
    evaluate(cfg)
    record = offline_record(tmp_path / "eval")
    assert b"eval/balanced_accuracy" in record and b"majority" in record
    assert b"plots/roc" in record and b"plots/reliability" in record and b"predictions" in record


def test_a_chunked_evaluations_predictions_table_names_the_deciding_chunk(tmp_path, monkeypatch):
    from hakim.eval.wandb_report import log_evaluation

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    row = {"id": "r1", "source": "fib", "language": "ms", "label": 1, "prediction": 1, "probability": 0.9}
    rows = [{**row, "chunk": 2, "chunk_count": 3, "claim_sentence": None}]
    overall = {"balanced_accuracy": 1.0, "majority_baseline": {"balanced_accuracy": 0.5}}
    summary = {"judge": "marker", "subsets": {"overall": overall}}
    log_evaluation(summary, rows, tmp_path, {"mode": "offline", "project": "hakim"}, {})
    tables = list((tmp_path / "wandb").glob("offline-run-*/files/media/table/predictions_*.table.json"))
    assert len(tables) == 1, tables
    table = json.loads(tables[0].read_text())
    assert table["columns"][-3:] == ["chunk", "chunk_count", "claim_sentence"]
    assert table["data"] == [["r1", "fib", "ms", 1, 1, 0.9, None, 2, 3, None]]


def test_a_secret_is_refused_on_the_command_line_and_never_written_from_the_environment(
    workspace, tiny_model_dir, sample_dataset
):
    secret = "sk-test-DO-NOT-WRITE-7351"
    refused = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"+openai.api_key={secret}", "hydra.run.dir=runs/leak"],
        cwd=workspace,
        env={**os.environ, "HAKIM_ROOT": str(workspace)},
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and not (workspace / "runs" / "leak").exists()
    assert (
        refused.stderr.strip().count("\n") == 0
        and "openai.api_key" in refused.stderr
        and "environment" in refused.stderr
    )

    run_dir = workspace / "runs" / "secret_from_env"
    environment = {**os.environ, "HAKIM_ROOT": str(workspace), "HAKIM_TEST_SECRET": secret, "WANDB_MODE": "offline"}
    arguments = [
        "+openai.api_key=${oc.env:HAKIM_TEST_SECRET}",
        "logger=wandb",
        "trainer.max_steps=2",
        "data.max_length=160",
        "lora.r=4",
        f"hydra.run.dir={run_dir}",
    ]
    subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *arguments],
        cwd=workspace,
        env=environment,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"resume={run_dir}"],
        cwd=workspace,
        env=environment,
        check=True,
        capture_output=True,
    )

    written = [path for path in run_dir.rglob("*") if path.is_file()]
    assert {".hydra", "wandb", "checkpoints", "adapter"} <= {path.relative_to(run_dir).parts[0] for path in written}
    assert [path for path in written if secret.encode() in path.read_bytes()] == []
    assert "api_key: <redacted>" in (run_dir / "config.yaml").read_text()
    ids = {folder.name.rsplit("-", 1)[-1] for folder in (run_dir / "wandb").glob("offline-run-*")}
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 2 and len(ids) == 1, (
        "resume= continues the same W&B run"
    )


PASTED_KEY = "sk-test-PASTED-IN-4242abcd"
# Where a user pastes a key by mistake: each is refused before Hydra writes .hydra/ or the run writes anything.
PASTED = [
    ("prepare_data.py", ["teacher=openai", f"teacher.api_key_env={PASTED_KEY}"], "teacher.api_key_env"),
    (
        "prepare_data.py",
        ["teacher=openai", f"teacher.base_url=http://hakim:{PASTED_KEY}@localhost:8000/v1"],
        "teacher.base_url",
    ),
    (
        "prepare_data.py",
        ["teacher=openai", f"+teacher.headers.Authorization='Bearer {PASTED_KEY}'"],
        "teacher.headers.Authorization",
    ),
    ("evaluate.py", ["judge=openai", f"judge.api_key_env={PASTED_KEY}"], "judge.api_key_env"),
    ("evaluate.py", ["judge=openai", f"judge.base_url=http://{PASTED_KEY}@localhost:8000/v1"], "judge.base_url"),
    (
        "evaluate.py",
        ["judge=openai", f"+judge.headers={{Authorization: 'Bearer {PASTED_KEY}'}}"],
        "judge.headers.Authorization",
    ),
]


def holding(root, secret: str) -> list:
    return [path for path in root.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()]


@pytest.mark.parametrize("script, overrides, key", PASTED, ids=[case[-1] for case in PASTED])
def test_a_key_pasted_into_api_key_env_base_url_or_a_header_is_refused_before_anything_is_written(
    tmp_path, script, overrides, key
):
    refused = subprocess.run(
        [sys.executable, str(ROOT / script), *overrides, "hydra.run.dir=runs/leak"],
        cwd=tmp_path,
        env={**os.environ, "HAKIM_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert (
        refused.stderr.startswith(f"error: {key}: a secret may not be written")
        and "environment variable" in refused.stderr
    )
    assert PASTED_KEY not in refused.stdout + refused.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "script, overrides, message",
    [
        (
            "prepare_data.py",
            ["teacher=openai", "teacher.base_url=${oc.env:HAKIM_TEST_VALUE}"],
            "teacher.base_url holds a user name or password",
        ),
        (
            "evaluate.py",
            ["judge=openai", "judge.api_key_env=${oc.env:HAKIM_TEST_VALUE}", "rows=rows.jsonl"],
            "judge.api_key_env holds what looks like the key itself",
        ),
    ],
    ids=["teacher.base_url", "judge.api_key_env"],
)
def test_a_key_read_from_the_environment_into_api_key_env_or_base_url_is_refused_and_never_written(
    tmp_path, script, overrides, message
):
    value = f"http://hakim:{PASTED_KEY}@localhost:9/v1" if "base_url" in message else PASTED_KEY
    (tmp_path / "rows.jsonl").write_text(
        '{"passage": "Langit biru.", "claim": "Langit biru", "label": 1, "language": "ms"}\n'
    )
    environment = {**os.environ, "HAKIM_ROOT": str(tmp_path), "HAKIM_TEST_VALUE": value}
    refused = subprocess.run(
        [sys.executable, str(ROOT / script), *overrides, "hydra.run.dir=runs/leak"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    output = refused.stdout + refused.stderr
    assert refused.returncode == 1 and message in output.strip().splitlines()[-1] and "Traceback" not in output
    assert PASTED_KEY not in output
    assert (tmp_path / "runs" / "leak" / ".hydra" / "config.yaml").exists()  # Hydra wrote `${oc.env:...}`, unresolved
    assert holding(tmp_path, PASTED_KEY) == []


def test_wandb_mode_from_the_environment_wins_over_an_api_key(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "not-a-real-key")
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode("auto") == "offline"
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_mode("auto") == "online"


def test_a_wandb_failure_warns_and_training_goes_on_with_csv(
    workspace, tiny_model_dir, sample_dataset, tmp_path, monkeypatch, caplog
):
    import wandb

    def unreachable(**kwargs):
        raise wandb.errors.CommError("Failed to get resume status")

    monkeypatch.setattr(wandb, "init", unreachable)
    with caplog.at_level(logging.WARNING):
        train(compose_config("train", workspace, tmp_path / "run", [*SHORT, "logger=wandb"]))
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "ok"
    assert losses(tmp_path / "run")
    assert any(
        "WandbLogger failed to start (CommError: Failed to get resume status)" in record.getMessage()
        for record in caplog.records
    )
