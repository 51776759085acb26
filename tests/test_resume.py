"""A killed run resumes exactly; a diverging run stops with a message and status `diverged`; DDP ranks split the
data."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

import hakim.train.judge_module
from conftest import ROOT, RunsACommand, compose_config, run_entry_point
from hakim.train.checkpoints import CheckpointError
from hakim.train.fit import train
from hakim.train.judge_module import TrainingDiverged

# 4 batches an epoch and 12 steps: three epochs with dropout drawing random numbers, a periodic checkpoint
# every 2 steps (mid-epoch and at each epoch's last batch, just before validation)
TRAIN_ARGS = [
    "data.max_length=160",
    "data.batch_size=4",
    "lora.r=4",
    "trainer.max_epochs=10",
    "trainer.max_steps=12",
    "trainer.limit_train_batches=4",
    "callbacks.last_checkpoint.every_n_train_steps=2",
    "optim.optimizer.lr=5e-3",
    "lora.dropout=0.1",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
]


def adapter(run_dir):
    return load_file(run_dir / "adapter" / "adapter_model.safetensors")


def checkpoint_steps(run_dir):
    return [
        int(match.group(1))
        for path in (run_dir / "checkpoints").glob("*.ckpt")
        if (match := re.search(r"step(\d+)", path.name))
    ]


def kill_after_checkpoint(workspace, run_dir, step, *arguments):
    """Run train.py with `arguments` and SIGKILL it as soon as a checkpoint of `step` or later is on disk."""
    environment = {**os.environ, "HAKIM_ROOT": str(workspace)}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *arguments],
        cwd=workspace,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline:
        if (run_dir / "checkpoints").exists() and max(checkpoint_steps(run_dir), default=0) >= step:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "run.json").exists(), "the run finished before it could be killed; make it longer"


def _snapshot(directory):
    return {
        path.relative_to(directory): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in directory.rglob("*")
        if path.is_file()
    }


def test_a_run_killed_twice_and_moved_resumes_to_the_same_adapter_as_an_uninterrupted_one(
    workspace, tiny_model_dir, sample_dataset
):
    run_entry_point("train.py", workspace, *TRAIN_ARGS, "hydra.run.dir=runs/whole")
    killed = workspace / "runs" / "killed"
    # killed first just after step 4, the last batch of epoch 0 (while validating); then copied elsewhere and,
    # resumed there, killed just after step 10, in the middle of epoch 2, after two reshuffles
    kill_after_checkpoint(workspace, killed, 4, *TRAIN_ARGS, f"hydra.run.dir={killed}")
    moved = workspace / "elsewhere" / "moved"
    shutil.copytree(killed, moved)
    original = _snapshot(killed)
    config_before = (moved / "config.yaml").read_text()
    assert str(killed) not in config_before  # the run's own paths are stored relative to it
    kill_after_checkpoint(workspace, moved, 10, f"resume={moved}")
    finished = run_entry_point("train.py", workspace, f"resume={moved}", "trainer.max_time=00:01:00:00")
    assert "resume: trainer.max_time=00:01:00:00 (was None); the limit counts from now" in finished.stdout

    assert _snapshot(killed) == original  # the copy resumed in its own place, the original was left as it was
    environment = json.loads((moved / "environment.json").read_text())
    resumed_from = [resume["step"] for resume in environment["resumes"]]
    assert len(resumed_from) == 2 and resumed_from[0] >= 4 and resumed_from[1] >= 10
    assert environment["command"][0] == "train.py" and "resume" not in " ".join(environment["command"])  # the launch
    assert json.loads((moved / "run.json").read_text())["global_step"] == 12
    assert (moved / "config.yaml").read_text() == config_before
    with open(moved / "csv" / "metrics.csv", newline="") as handle:
        steps = {int(row["step"]) for row in csv.DictReader(handle) if row.get("train/loss")}
    assert min(steps) < 4 and max(steps) >= 10  # metrics.csv continued across both resumes
    whole, resumed = adapter(workspace / "runs" / "whole"), adapter(moved)
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name


def test_resume_refuses_an_override_that_changes_what_is_computed(workspace, tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    refused = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"resume={tmp_path}", "lora.r=8"],
        cwd=workspace,
        env={**os.environ, "HAKIM_ROOT": str(workspace)},
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert "lora.r would change what it computes. Only trainer.max_time" in refused.stderr


# 4 batches an epoch and 4 steps: a periodic checkpoint at step 3, then epoch 0 ends at step 4 with a validation
FOUR_STEPS = [
    "data.max_length=160",
    "data.batch_size=4",
    "lora.r=4",
    "trainer.max_steps=4",
    "trainer.limit_train_batches=4",
    "callbacks.last_checkpoint.every_n_train_steps=3",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "optim.optimizer.lr=5e-3",
    "trainer.enable_progress_bar=false",
    "print_config=false",
]


@pytest.fixture(scope="module")
def four_step_run(workspace, tiny_model_dir, sample_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("four_steps") / "run"
    train(compose_config("train", workspace, run_dir, FOUR_STEPS))
    assert sorted(checkpoint_steps(run_dir)) == [3, 4]
    return run_dir


def test_resume_continues_from_the_checkpoint_ckpt_path_names_and_refuses_a_missing_one(
    workspace, four_step_run, tmp_path
):
    run_dir = tmp_path / "run"
    shutil.copytree(four_step_run, run_dir)
    with pytest.raises(
        CheckpointError, match=re.escape(f"ckpt_path={tmp_path / 'missing.ckpt'}: no such file; give a .ckpt")
    ):
        train(
            compose_config(
                "train", workspace, tmp_path / "out", [f"resume={run_dir}", f"ckpt_path={tmp_path / 'missing.ckpt'}"]
            )
        )

    earlier = run_dir / "checkpoints" / "latest-step3.ckpt"
    train(compose_config("train", workspace, tmp_path / "out", [f"resume={run_dir}", f"ckpt_path={earlier}"]))
    resumes = json.loads((run_dir / "environment.json").read_text())["resumes"]
    assert [(resume["checkpoint"], resume["step"]) for resume in resumes] == [(str(earlier), 3)]
    assert json.loads((run_dir / "run.json").read_text())["global_step"] == 4


def logged(run_dir) -> list[tuple[str, int]]:
    """(kind, step) of each row of csv/metrics.csv, in order: train, val, or lr (the learning-rate monitor)."""
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        return [
            ("train" if row["train/loss"] else "val" if row["val/loss"] else "lr", int(row["step"]))
            for row in csv.DictReader(handle)
        ]


def test_metrics_csv_holds_each_step_once_when_a_resume_does_steps_again(workspace, four_step_run, tmp_path):
    killed = tmp_path / "killed"
    shutil.copytree(four_step_run, killed)
    # as if killed after step 4 and its validation were logged, but before their checkpoints were written
    for path in (killed / "checkpoints").glob("*.ckpt"):
        if path.name != "latest-step3.ckpt":
            path.unlink()
    (killed / "run.json").unlink()
    train(compose_config("train", workspace, tmp_path / "out", [f"resume={killed}"]))
    assert logged(killed) == logged(four_step_run)
    assert ("val", 3) in logged(killed) and ("train", 3) in logged(killed)


def test_a_ckpt_path_that_is_not_a_checkpoint_is_refused_in_one_line_before_anything_is_written(
    workspace, tiny_model_dir, sample_dataset, tmp_path
):
    marker, pickled = tmp_path / "ran", tmp_path / "model.ckpt"
    torch.save({"global_step": 1, "state_dict": RunsACommand(marker)}, pickled)
    run_dir = tmp_path / "run"
    refused = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), f"ckpt_path={pickled}", f"hydra.run.dir={run_dir}"],
        cwd=workspace,
        env={**os.environ, "HAKIM_ROOT": str(workspace)},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: CheckpointError: ckpt_path={pickled}: refused: not a Hakim checkpoint")
    )
    assert "weights_only" not in refused.stdout + refused.stderr and "Traceback" not in refused.stderr
    assert not marker.exists() and not (run_dir / "environment.json").exists()


def test_resume_refuses_a_directory_without_checkpoint(workspace, tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    (tmp_path / "checkpoints").mkdir()
    cfg = compose_config("train", workspace, tmp_path / "out", [f"resume={tmp_path}"])
    with pytest.raises(FileNotFoundError, match="no readable checkpoint"):
        train(cfg)


def test_non_finite_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(train_config, monkeypatch, tmp_path):
    real = hakim.train.judge_module.completion_cross_entropy
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss, count = real(*args, **kwargs)
        calls["n"] += 1
        return (loss * float("nan"), count) if calls["n"] > 4 else (loss, count)

    monkeypatch.setattr(hakim.train.judge_module, "completion_cross_entropy", poisoned)
    cfg = train_config("callbacks.last_checkpoint.every_n_train_steps=2", "trainer.max_steps=10", "logger=csv")
    with pytest.raises(TrainingDiverged, match="non-finite training loss at step 4"):
        train(cfg)
    assert checkpoint_steps(tmp_path / "run") == [4]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "diverged"


def diverged_run(train_config, tmp_path, *overrides):
    """Train until the divergence guard stops the run; its error message and run.json."""
    cfg = train_config(
        "data.max_length=160",
        "data.batch_size=4",
        "lora.r=4",
        "trainer.max_steps=12",
        "callbacks.last_checkpoint.every_n_train_steps=1",
        *overrides,
    )
    with pytest.raises(TrainingDiverged) as stopped:
        train(cfg)
    return str(stopped.value), json.loads((tmp_path / "run" / "run.json").read_text())


def test_an_infinite_learning_rate_stops_before_any_checkpoint_holds_non_finite_weights(train_config, tmp_path):
    message, summary = diverged_run(train_config, tmp_path, "optim.optimizer.lr=inf")
    assert "non-finite" in message and "optim.optimizer.lr" in message
    assert summary["status"] == "diverged" and summary["global_step"] == 0
    assert not list((tmp_path / "run" / "checkpoints").glob("*.ckpt")), "step 0's weights were broken: nothing to keep"


def test_a_saturated_run_whose_gradients_vanish_is_stopped_as_diverged(train_config, tmp_path):
    message, summary = diverged_run(train_config, tmp_path, "optim.optimizer.lr=1e6")
    assert "gradient norm 0 for 3 steps" in message and "optim.optimizer.lr" in message
    assert summary["status"] == "diverged" and 3 <= summary["global_step"] < 12


def test_a_loss_above_the_watchdog_threshold_stops_the_run_after_its_patience(train_config, tmp_path):
    message, summary = diverged_run(
        train_config, tmp_path, "callbacks.loss_watchdog.threshold=0.5", "callbacks.loss_watchdog.patience=2"
    )
    assert "above callbacks.loss_watchdog.threshold=0.5 for 2 steps" in message
    assert summary == {**summary, "status": "diverged", "global_step": 2}


def test_a_wall_clock_limit_stops_training_and_still_writes_the_judge(train_config, tmp_path):
    cfg = train_config("trainer.max_time=00:00:00:01", "trainer.max_epochs=50", "logger=csv")
    train(cfg)
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["status"] == "ok" and 0 < summary["global_step"] < summary["planned_steps"]
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").exists()


def test_ddp_ranks_train_on_different_data_and_end_with_identical_weights_and_metrics(
    workspace, tiny_model_dir, sample_dataset
):
    # one validation at step 4, in eval batches of 4 so that each rank validates rows of both sources
    run_entry_point(
        "train.py",
        workspace,
        "trainer=ddp_cpu",
        "callbacks=rank_audit",
        "data.max_length=192",
        "data.batch_size=4",
        "data.eval_batch_size=4",
        "lora.r=4",
        "trainer.max_steps=4",
        "trainer.val_check_interval=4",
        "hydra.run.dir=runs/ddp",
        timeout=600,
    )
    audits = [json.loads((workspace / "runs" / "ddp" / "rank_audit" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [a["world_size"] for a in audits] == [2, 2]
    assert audits[0]["ids"] and audits[1]["ids"] and not set(audits[0]["ids"]) & set(audits[1]["ids"])
    assert audits[0]["weights_sha256"] == audits[1]["weights_sha256"]
    assert "val/loss" in audits[0]["metrics"] and audits[0]["metrics"] == audits[1]["metrics"], (
        "metrics reduced over ranks"
    )
    assert (workspace / "runs" / "ddp" / "adapter" / "adapter_model.safetensors").exists()


def test_a_missing_dataset_fails_in_one_line_before_the_model_loads_and_leaves_run_json(workspace, tiny_model_dir):
    run_dir = workspace / "runs" / "no_data"
    failed = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "data.dataset_dir=/nonexistent", f"hydra.run.dir={run_dir}"],
        cwd=workspace,
        env={**os.environ, "HAKIM_ROOT": str(workspace)},
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert (
        failed.stderr.strip()
        .splitlines()[-1]
        .startswith("error: FileNotFoundError: no prepared dataset at /nonexistent")
    )
    assert "Traceback" not in failed.stderr + failed.stdout and "Loading weights" not in failed.stderr
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["status"] == "failed" and "no prepared dataset" in summary["error"]
    assert "Traceback" in (run_dir / "train.log").read_text()


@pytest.mark.parametrize(
    "script, override, message",
    [
        ("evaluate.py", "judge.run_dir=/nonexistent/run", "/nonexistent/run"),
        ("prepare_data.py", "corpus=local_files", "source 'mine'"),
    ],
)
def test_evaluate_and_prepare_fail_in_one_line(workspace, script, override, message):
    failed = subprocess.run(
        [sys.executable, str(ROOT / script), override],
        cwd=workspace,
        env={**os.environ, "HAKIM_ROOT": str(workspace)},
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr + failed.stdout
    assert message in (failed.stdout + failed.stderr).strip().splitlines()[-1]


def test_the_watchdog_counts_its_patience_across_a_resume(train_config, tmp_path):
    from hakim.train.callbacks import LossWatchdog

    cfg = train_config(
        "callbacks.loss_watchdog.threshold=0.001",
        "callbacks.loss_watchdog.patience=100",
        "trainer.max_steps=3",
        "callbacks.last_checkpoint.every_n_train_steps=1",
    )
    train(cfg)
    newest = max((tmp_path / "run" / "checkpoints").glob("latest-step*.ckpt"), key=lambda p: p.stat().st_mtime)
    saved = torch.load(newest, weights_only=True)["callbacks"]
    state = next(value for key, value in saved.items() if key.startswith("LossWatchdog"))
    assert state["spiking"] == 3 and state["last_step"] == 3
    resumed = LossWatchdog(threshold=0.001, patience=100)
    resumed.load_state_dict(state)
    assert resumed.spiking == 3


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda config: config["module"].update(_target_="os.system"), "module._target_ is 'os.system'"),
        (
            lambda config: config["callbacks"]["progress_log"].update(_target_="builtins.exec"),
            "callbacks.progress_log._target_",
        ),
        (lambda config: config.pop("style"), "written by an older Hakim (no style)"),
    ],
)
def test_rerun_and_resume_refuse_a_saved_config_that_names_foreign_code_or_predates_this_layout(
    workspace, tiny_run, tmp_path, tamper, message
):
    handed = tmp_path / "handed"
    shutil.copytree(tiny_run, handed)
    config = yaml.safe_load((handed / "config.yaml").read_text())
    tamper(config)
    (handed / "config.yaml").write_text(yaml.safe_dump(config))
    for option in ("rerun", "resume"):
        with pytest.raises(ValueError, match=re.escape(message)):
            train(compose_config("train", workspace, tmp_path / option, [f"{option}={handed}"]))
    assert not (tmp_path / "rerun" / "config.yaml").exists()  # refused before anything was written
