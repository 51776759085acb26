"""Sweeps as a user runs them: a real Hydra multirun (one job failing), its summary, run diffs, an Optuna search
(pruned, killed and continued, with a failing trial), SLURM."""

import csv
import io
import json
import shutil
import time
import wsgiref.util

import optuna
import optuna_dashboard
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from rich.console import Console

from conftest import CONF_DIR, run_entry_point, start_entry_point
from hakim.cli.config_diff import main as config_diff_main
from hakim.cli.sweep_summary import main as sweep_summary_main
from hakim.runs.config_diff import diff_runs
from hakim.runs.sweep_summary import last_exception, summarize
from hakim.search.space import search_space, trial_overrides
from hakim.search.study import RUN_DIR, open_study
from hakim.search.sweep import only_search_in
from hakim.train.pruning import SWEEPER

# validate once after two optimizer steps, on one batch: the fastest run that still yields val/* metrics
SHORT_RUN = [
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "data.max_length=256",
]


def compose_with_hydra(workspace, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="train", overrides=[f"paths.root_dir={workspace}", *overrides], return_hydra_config=True
        )


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
    assert (
        "job 2 failed: ValueError: `r` should be a positive integer value but the value passed is 0"
        in printed.replace("\n", "")
    )

    with (sweep_dir / "sweep_summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["job"], row["lora.r"], row["status"]) for row in rows[2:]] == [("2", "0", "failed")]
    ok = rows[:2]
    assert {row["lora.r"] for row in ok} == {"2", "4"} and all(row["status"] == "ok" for row in ok)
    assert float(ok[0]["val/balanced_accuracy"]) >= float(ok[1]["val/balanced_accuracy"])
    for row in ok:
        assert (
            0 <= float(row["val/balanced_accuracy"]) <= 1
            and 0 <= float(row["val/auroc"]) <= 1
            and float(row["val/loss"]) > 0
        )
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
    log = "\n".join(
        [
            "[2026-01-01 10:00:00][hakim.job][ERROR] - job failed: runs/x/0",
            "Traceback (most recent call last):",
            '  File "a.py", line 1, in f',
            "    g()",
            "KeyError: 'cause'",
            "",
            "The above exception was the direct cause of the following exception:",
            "",
            "Traceback (most recent call last):",
            '  File "a.py", line 3, in h',
            "    raise RuntimeError('outer')",
            "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^",
            "RuntimeError: outer",
        ]
    )
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


def test_the_search_space_reads_hydra_sweeps_as_optuna_distributions():
    params = {
        "optim.optimizer.lr": "tag(log, interval(1e-5, 1e-3))",
        "lora.r": "choice(8, 16)",
        "lora.dropout": "interval(0.0, 0.2)",
        "data.batch_size": "range(2, 9, 2)",
        "seed": 7,
    }
    space = search_space(
        params, ["lora.r=4", "optim.scheduler.kind=constant,cosine", "+lora.extra.bias=choice(none,all)"]
    )
    assert space.distributions == {
        "optim.optimizer.lr": FloatDistribution(1e-5, 1e-3, log=True),
        "lora.dropout": FloatDistribution(0.0, 0.2),
        "data.batch_size": IntDistribution(2, 8, step=2),
        "optim.scheduler.kind": CategoricalDistribution(["constant", "cosine"]),
        "+lora.extra.bias": CategoricalDistribution(["none", "all"]),
    }
    assert space.fixed == ["seed=7", "lora.r=4"]  # a plain value on the command line replaces the config's sweep

    # a trial's values come back from its job's overrides as they were drawn, strings that look like numbers too
    values = {"a": 1e-05, "b": "constant", "c": "1e-4", "d": True, "e": None, "f": "it's, odd", "g": 16}
    parsed = OverridesParser.create().parse_overrides(trial_overrides(values, []))
    assert {override.key_or_group: override.value() for override in parsed} == values

    with pytest.raises(ValueError, match="lora.dropout: unknown tag lg"):
        search_space({"lora.dropout": "tag(lg, interval(0.0, 0.2))"}, [])
    with pytest.raises(ValueError, match="lora.r: range\\(\\) of floats"):
        search_space({"lora.r": "range(1.0, 4.0)"}, [])


def test_the_optuna_search_composes_with_its_sweeper_pruner_and_study_file(workspace):
    cfg = compose_with_hydra(workspace, ["hparams_search=balanced_accuracy_optuna"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == SWEEPER and sweeper.direction == "maximize" and sweeper.sampler.seed == cfg.seed
    assert sweeper.pruner._target_ == "optuna.pruners.MedianPruner"
    assert cfg.optimized_metric == cfg.callbacks.optuna_pruning.monitor == "val/balanced_accuracy"
    # the study file sits in a sweep directory without a time in its name: the same command finds it again
    assert cfg.hydra.sweep.dir == f"{workspace}/runs/train/search/train_balanced_accuracy"
    assert sweeper.storage == f"sqlite:///{cfg.hydra.sweep.dir}/optuna.db"
    space = search_space(sweeper.params, [])
    assert set(space.distributions) == set(sweeper.params) and not space.fixed
    for key in sweeper.params:
        assert OmegaConf.select(cfg, key) is not None, f"searched key {key} is not in the train config"


# Each trial validates after each of its two steps (the search config validates 4 times an epoch); trial 0 learns,
# trial 1 is the same with learning rate 0: at step 1, its first validation, its val/loss loses to trial 0's.
LEARNS = {
    "optim.optimizer.lr": 0.003,
    "lora.r": 8,
    "lora.alpha": 16,
    "lora.dropout": 0.0,
    "optim.scheduler.kind": "constant",
    "module.verdict_loss_weight": 0.0,
}
FROZEN = {**LEARNS, "optim.optimizer.lr": 0.0}


def enqueue(*trials: dict) -> str:
    return (
        "hydra.sweeper.enqueue=["
        + ", ".join("{" + ", ".join(f"{key}: {value}" for key, value in trial.items()) + "}" for trial in trials)
        + "]"
    )


def search_overrides(directory, study_name: str, *overrides: str) -> list[str]:
    """A search of SHORT_RUN trials, but for trainer.limit_train_batches: each test gives its own."""
    run = [override for override in SHORT_RUN if not override.startswith("trainer.limit_train_batches=")]
    return [
        "-m",
        "hparams_search=balanced_accuracy_optuna",
        *run,
        "print_config=false",
        f"hydra.sweep.dir={directory}",
        f"hydra.sweeper.study_name={study_name}",
        *overrides,
    ]


PRUNING = [
    "trainer.limit_train_batches=2",
    "optimized_metric=val/loss",
    "hydra.sweeper.direction=minimize",
    "optim.optimizer.lr=choice(0.0,0.003)",
    "hydra.sweeper.pruner.n_startup_trials=1",
    enqueue(LEARNS, FROZEN),
    "hydra.sweeper.n_trials=4",
]


def study_trials(directory, study_name: str) -> list:
    storage = optuna.storages.RDBStorage(f"sqlite:///{directory}/optuna.db", skip_table_creation=True)
    return optuna.load_study(study_name=study_name, storage=storage).get_trials()


def run_summary(directory, number: int) -> dict:
    return json.loads((directory / str(number) / "run.json").read_text())


@pytest.mark.slow
def test_a_search_prunes_a_losing_trial_and_reports_the_best(
    workspace, tiny_model_dir, sample_dataset, tmp_path, capsys
):
    directory = tmp_path / "search"
    run_entry_point("train.py", workspace, *search_overrides(directory, "pruning", *PRUNING))

    trials = study_trials(directory, "pruning")
    assert len(trials) == 4 and trials[0].state == TrialState.COMPLETE and trials[1].state == TrialState.PRUNED
    assert all(trial.state in (TrialState.COMPLETE, TrialState.PRUNED) for trial in trials)
    assert sorted(trials[0].intermediate_values) == [1, 2] and list(trials[1].intermediate_values) == [1]
    assert trials[1].intermediate_values[1] > trials[0].intermediate_values[1]
    pruned = run_summary(directory, 1)
    assert (
        pruned["status"] == "pruned" and pruned["global_step"] == 1 and "pruned at step 1: val/loss=" in pruned["error"]
    )
    log = (directory / "1" / "train.log").read_text()
    assert "pruned at step 1" in log and "job failed" not in log and "Traceback" not in log

    best = min((trial for trial in trials if trial.state == TrialState.COMPLETE), key=lambda trial: trial.value)
    results = yaml.safe_load((directory / "optimization_results.yaml").read_text())
    assert results["best_trial"] == best.number and results["best_params"] == best.params
    assert set(best.params) == set(LEARNS) and results["best_value"] == pytest.approx(best.value)
    assert results["trials"]["pruned"] >= 1 and results["trials"]["failed"] == 0
    # the objective is val/loss as validated on the adapter the best trial kept
    assert best.value == pytest.approx(run_summary(directory, best.number)["adapter_metrics"]["val/loss"])

    sweep_summary_main([str(directory), "--metric", "val/loss"])  # no SystemExit: a pruned trial is no failure
    printed = capsys.readouterr().out.replace("\n", "")
    assert "4 jobs" in printed and "pruned by the search (not failures): job 1 at step 1" in printed
    assert "job 1 pruned:" not in printed  # not listed with the failures

    # optuna-dashboard reads the study file as it is
    app = optuna_dashboard.wsgi(f"sqlite:///{directory}/optuna.db")
    studies = dashboard_get(app, "/api/studies")["study_summaries"]
    assert [study["study_name"] for study in studies] == ["pruning"]
    detail = dashboard_get(app, f"/api/studies/{studies[0]['study_id']}")
    assert [trial["state"] for trial in detail["trials"]] == [trial.state.name.capitalize() for trial in trials]


def dashboard_get(app, path: str) -> dict:
    environ = {"PATH_INFO": path}
    wsgiref.util.setup_testing_defaults(environ)
    status = []
    body = b"".join(app(environ, lambda code, headers, *args: status.append(code)))
    assert status == ["200 OK"], (path, status, body[:300])
    return json.loads(body)


def wait_for_trial_to_train(directory, study_name: str, number: int, process, timeout: float = 300) -> None:
    """Until trial `number` has started training (its job has told the study where its run directory is)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the search ended before trial {number} started training"
        if (directory / str(number)).exists():
            trials = study_trials(directory, study_name)
            if len(trials) > number and RUN_DIR in trials[number].user_attrs:
                return
        time.sleep(0.2)
    raise TimeoutError(f"trial {number} did not start within {timeout} s")


@pytest.mark.slow
def test_a_killed_search_run_again_continues_its_study(workspace, tiny_model_dir, sample_dataset, tmp_path):
    directory = tmp_path / "search"
    # trial 2 trains 6 steps, so it is still training when killed; the others 2 (the first two as enqueued, the last
    # as drawn). No pruner: which trials finish must not depend on how they compare.
    steps = "trainer.limit_train_batches"
    command = search_overrides(
        directory,
        "killed",
        f"{steps}=choice(2,6)",
        enqueue({steps: 2}, {steps: 2}, {steps: 6}),
        "hydra.sweeper.pruner=null",
        "hydra.sweeper.n_trials=4",
    )
    with open(tmp_path / "killed.log", "w") as log:
        process = start_entry_point("train.py", workspace, *command, log=log)
        try:
            wait_for_trial_to_train(directory, "killed", 2, process)
        finally:
            process.kill()
            process.wait()
    killed = study_trials(directory, "killed")
    assert [trial.state for trial in killed] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]
    finished_runs = {number: (directory / str(number) / "run.json").read_text() for number in (0, 1)}

    run_entry_point("train.py", workspace, *command)
    trials = study_trials(directory, "killed")
    assert [(trial.number, trial.state) for trial in trials] == [(number, TrialState.COMPLETE) for number in range(4)]
    assert trials[2].params == killed[2].params  # the interrupted trial, run again with its values
    # no trial drawn twice: the continued search's sampler does not start the seed's draws over
    assert len({tuple(sorted(trial.params.items())) for trial in trials}) == 4
    assert {number: (directory / str(number) / "run.json").read_text() for number in (0, 1)} == finished_runs
    assert sorted(path.name for path in directory.iterdir() if path.is_dir()) == ["0", "1", "2", "3", "interrupted"]
    assert (directory / "interrupted" / "2" / "config.yaml").exists()  # the killed attempt, kept to read
    assert run_summary(directory, 2)["status"] == run_summary(directory, 3)["status"] == "ok"
    assert yaml.safe_load((directory / "optimization_results.yaml").read_text())["trials"]["failed"] == 0


def test_a_study_is_continued_only_by_the_command_that_started_it(tmp_path):
    settings = OmegaConf.create(
        {
            "study_name": "s",
            "storage": f"sqlite:///{tmp_path}/optuna.db",
            "direction": "maximize",
            "sampler": {"_target_": "optuna.samplers.RandomSampler", "seed": 1},
            "pruner": None,
            "enqueue": [{"lora.r": 4}],
        }
    )
    first = open_study(settings, ["experiment=v2", "data.max_length=512"])
    assert [trial.state for trial in first.get_trials()] == [TrialState.WAITING]  # the enqueued trial, to run first
    first.tell(first.ask({"lora.r": CategoricalDistribution([4, 8])}), 0.5)

    again = open_study(settings, ["experiment=v2", "data.max_length=512"])
    assert len(again.get_trials()) == 1  # continued, not enqueued again
    with pytest.raises(
        ValueError,
        match=r"started with the overrides \['experiment=v2', 'data.max_length=512'\], this "
        r"command gives \['experiment=v2', 'data.max_length=128'\]",
    ):
        open_study(settings, ["experiment=v2", "data.max_length=128"])
    with pytest.raises(ValueError, match="was started to maximize, hydra.sweeper.direction is minimize"):
        open_study(OmegaConf.merge(settings, {"direction": "minimize"}), ["experiment=v2", "data.max_length=512"])


def test_one_search_at_a_time_in_a_sweep_directory(tmp_path):
    """The same command started twice would take the first one's running trial for an interrupted one."""
    with (
        only_search_in(tmp_path),
        pytest.raises(SystemExit, match=f"another search is running in {tmp_path}"),
        only_search_in(tmp_path),
    ):
        pass
    with only_search_in(tmp_path):  # free again once the first has ended
        pass


@pytest.mark.slow
def test_a_failing_trial_is_recorded_as_failed_and_the_search_goes_on(
    workspace, tiny_model_dir, sample_dataset, tmp_path
):
    directory = tmp_path / "search"
    with pytest.raises(AssertionError, match=r"1 of 2 trials failed \(trial 0\)"):
        run_entry_point(
            "train.py",
            workspace,
            *search_overrides(
                directory,
                "failing",
                "trainer.limit_train_batches=2",
                "lora.r=choice(0,4)",
                enqueue({"lora.r": 0}, {"lora.r": 4}),
                "hydra.sweeper.n_trials=2",
                "hydra.sweeper.max_failure_rate=0.5",
            ),
        )
    assert [trial.state for trial in study_trials(directory, "failing")] == [TrialState.FAIL, TrialState.COMPLETE]
    failed = run_summary(directory, 0)
    assert failed["status"] == "failed" and "`r` should be a positive integer" in failed["error"]
    assert "job failed" in (directory / "0" / "train.log").read_text()
    assert run_summary(directory, 1)["status"] == "ok"
    results = yaml.safe_load((directory / "optimization_results.yaml").read_text())
    assert results["trials"] == {"complete": 1, "pruned": 0, "failed": 1} and results["best_trial"] == 1
    with pytest.raises(SystemExit, match=r"1 of 2 jobs did not end ok: 0 \(failed\)"):
        sweep_summary_main([str(directory)])


def test_slurm_launcher_composes_with_account_from_the_environment(workspace, monkeypatch):
    monkeypatch.delenv("SBATCH_PARTITION", raising=False)
    monkeypatch.setenv("SBATCH_ACCOUNT", "hakim-lab")
    launcher = compose_with_hydra(workspace, ["hydra/launcher=slurm"]).hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.account == "hakim-lab" and launcher.partition is None
    assert launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1 and launcher.timeout_min > 0
