"""Sweeps as a user runs them: a real Hydra multirun (one job failing), its summary, run diffs, Optuna, SLURM."""

import csv
import io
import json
import shutil

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from rich.console import Console

from conftest import CONF_DIR, run_entry_point
from hakim.cli.config_diff import main as config_diff_main
from hakim.cli.sweep_summary import main as sweep_summary_main
from hakim.runs.config_diff import diff_runs
from hakim.runs.sweep_summary import last_exception, summarize

# validate once after two optimizer steps, on one batch: the fastest run that still yields val/* metrics
SHORT_RUN = ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.log_every_n_steps=1",
             "data.max_length=256"]


def compose_with_hydra(workspace, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[f"paths.root_dir={workspace}", *overrides], return_hydra_config=True)


@pytest.fixture(scope="module")
def sweep_dir(workspace, tiny_model_dir, sample_dataset, tmp_path_factory):
    """`-m lora.r=2,4,0`: two jobs train, the third fails (LoRA rank 0) and so does the multirun."""
    directory = tmp_path_factory.mktemp("sweep")
    with pytest.raises(AssertionError, match="should be a positive integer"):
        run_entry_point("train.py", workspace, "-m", "lora.r=2,4,0", *SHORT_RUN, f"hydra.sweep.dir={directory}")
    return directory


@pytest.mark.slow
def test_sweep_summary_ranks_every_job_and_shows_the_failure(sweep_dir, capsys):
    with pytest.raises(SystemExit, match=r"1 of 3 jobs did not end ok: 2 \(failed\)"):
        sweep_summary_main([str(sweep_dir)])
    printed = capsys.readouterr().out
    assert "3 jobs, 2 ok" in printed and "data.max_length=256" in printed
    assert "job 2 failed: ValueError: `r` should be a positive integer value but the value passed is 0" in printed.replace("\n", "")

    with (sweep_dir / "sweep_summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["job"], row["lora.r"], row["status"]) for row in rows[2:]] == [("2", "0", "failed")]
    ok = rows[:2]
    assert {row["lora.r"] for row in ok} == {"2", "4"} and all(row["status"] == "ok" for row in ok)
    assert float(ok[0]["val/balanced_accuracy"]) >= float(ok[1]["val/balanced_accuracy"])
    for row in ok:
        assert 0 <= float(row["val/balanced_accuracy"]) <= 1 and 0 <= float(row["val/auroc"]) <= 1 and float(row["val/loss"]) > 0
        assert float(row["tokens_per_second"]) > 0 and float(row["wall_seconds"]) > 0

    table = (sweep_dir / "sweep_summary.md").read_text()
    assert "Shared overrides: `trainer.limit_train_batches=2`" in table
    header = next(line for line in table.splitlines() if line.startswith("| job"))
    assert "lora.r" in header and "limit_train_batches" not in header
    assert "- job 2 failed: ValueError" in table


@pytest.mark.slow
def test_a_job_killed_without_a_traceback_is_listed_as_unfinished(sweep_dir, tmp_path):
    copy = shutil.copytree(sweep_dir, tmp_path / "sweep")
    (copy / "1" / "run.json").unlink()
    jobs = summarize(copy, console=Console(file=io.StringIO(), width=200))
    assert [(job.name, job.status) for job in jobs] == [("0", "ok"), ("1", "unfinished"), ("2", "failed")]


def test_the_reported_error_is_the_exception_that_ended_the_job():
    log = "\n".join([
        "[2026-01-01 10:00:00][hakim.job][ERROR] - job failed: runs/x/0",
        "Traceback (most recent call last):", '  File "a.py", line 1, in f', "    g()",
        "KeyError: 'cause'", "", "The above exception was the direct cause of the following exception:", "",
        "Traceback (most recent call last):", '  File "a.py", line 3, in h', "    raise RuntimeError('outer')",
        "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^", "RuntimeError: outer",
    ])
    assert last_exception(log) == "RuntimeError: outer"
    assert last_exception("[INFO] - all good\n") is None


@pytest.mark.slow
def test_config_diff_names_what_differs_between_two_jobs(sweep_dir, capsys):
    differences = diff_runs(sweep_dir / "0", sweep_dir / "1")
    assert differences["config"] == ["lora.r: 2 → 4"]
    assert differences["data"] == []
    assert differences["environment"] == ['overrides: only in A ["lora.r=2"], only in B ["lora.r=4"]']

    with pytest.raises(SystemExit) as exit_code:
        config_diff_main([str(sweep_dir / "0"), str(sweep_dir / "1")])
    printed = capsys.readouterr().out
    assert exit_code.value.code == 1 and "config: 1 difference" in printed and "data: identical" in printed

    with pytest.raises(SystemExit) as exit_code:
        config_diff_main([str(sweep_dir / "0"), str(sweep_dir / "0")])
    assert exit_code.value.code == 0
    assert capsys.readouterr().out.count("identical") == 3


def test_optuna_search_space_names_real_keys_in_valid_syntax(workspace):
    cfg = compose_with_hydra(workspace, ["hparams_search=balanced_accuracy_optuna"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert cfg.optimized_metric == "val/balanced_accuracy" and sweeper.sampler.seed == cfg.seed
    for key, space in sweeper.params.items():
        assert OmegaConf.select(cfg, key) is not None, f"searched key {key} is not in the train config"
        assert OverridesParser.create().parse_overrides([f"{key}={space}"])[0].is_sweep_override()


@pytest.mark.slow
def test_two_optuna_trials_train_and_report_the_best(workspace, tiny_model_dir, sample_dataset, tmp_path):
    directory = tmp_path / "optuna"
    run_entry_point("train.py", workspace, "-m", "hparams_search=balanced_accuracy_optuna", "model=tiny_mistral", *SHORT_RUN,
                    "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={directory}")
    results = yaml.safe_load((directory / "optimization_results.yaml").read_text())
    searched = yaml.safe_load((CONF_DIR / "hparams_search" / "balanced_accuracy_optuna.yaml").read_text())["hydra"]["sweeper"]["params"]
    assert set(results["best_params"]) == set(searched) and 0 <= results["best_value"] <= 1

    jobs = summarize(directory, console=Console(file=io.StringIO(), width=200))
    assert [job.status for job in jobs] == ["ok", "ok"]
    assert jobs[0].metrics["val/balanced_accuracy"] == pytest.approx(results["best_value"])
    best = json.loads((jobs[0].directory / "run.json").read_text())
    assert best["metrics"]["val/balanced_accuracy"] == pytest.approx(results["best_value"])


def test_slurm_launcher_composes_with_account_from_the_environment(workspace, monkeypatch):
    monkeypatch.delenv("SBATCH_PARTITION", raising=False)
    monkeypatch.setenv("SBATCH_ACCOUNT", "hakim-lab")
    launcher = compose_with_hydra(workspace, ["hydra/launcher=slurm"]).hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.account == "hakim-lab" and launcher.partition is None
    assert launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1 and launcher.timeout_min > 0
