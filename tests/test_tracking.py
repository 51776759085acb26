"""Runs are reproducible from their saved config, and W&B (offline) gets config and metrics without secrets."""

import csv
import time

from conftest import compose_config
from hakim.evaluation import evaluate
from hakim.training import train

SHORT = ["data.max_length=160", "data.batch_size=4", "lora.r=4", "trainer.max_steps=6", "trainer.limit_val_batches=2",
         "lora.dropout=0.1", "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false"]


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
    assert not list((tmp_path / "first" / "checkpoints").glob("*")) == []


def test_wandb_offline_run_gets_the_config_without_secrets(workspace, tiny_model_dir, sample_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_config("train", workspace, tmp_path / "run", [*SHORT, "logger=wandb", "logger.wandb.log_adapter=true",
                                                                "trainer.max_steps=-1", "+teacher_api_key=sk-should-not-leak"])
    train(cfg)
    record = offline_record(tmp_path / "run")
    assert b"lora" in record and b"train/loss" in record and b"train/grad_norm" in record
    assert b"<redacted>" in record and b"sk-should-not-leak" not in record
    assert b"val/predictions" in record and b"adapter_model.safetensors" in record


def test_evaluation_tables_and_plots_go_to_wandb(workspace, sample_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose_config("evaluate", workspace, tmp_path / "eval", [
        "judge=majority", f"dataset_dir={sample_dataset}", "wandb.enabled=true", "wandb.mode=offline"])
    evaluate(cfg)
    record = offline_record(tmp_path / "eval")
    assert b"eval/balanced_accuracy" in record and b"majority" in record
    assert b"plots/roc" in record and b"plots/reliability" in record and b"predictions" in record
