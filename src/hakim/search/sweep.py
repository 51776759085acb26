"""The search loop behind `python train.py -m hparams_search=...`: ask the study for trials, run each as a Hydra
job whose number is the trial's (run directory `<sweep dir>/<trial number>`), tell the study how each ended.

A trial's job ends one of three ways: it returns `optimized_metric` (complete), it raises optuna.TrialPruned
from the pruning callback (pruned: not a failure), or it raises anything else (failed; the search goes on until
more than `max_failure_rate` × `n_trials` trials failed). A trial still running when the search was killed is
run again, under its number and with its values, the next time the same command runs; its old run directory
is kept in `<sweep dir>/interrupted/`.
"""

from __future__ import annotations

import fcntl
import logging
import math
import shutil
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import optuna
import yaml
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from hakim.search.space import search_space, trial_overrides
from hakim.search.study import RUN_DIR, open_study

log = logging.getLogger(__name__)

RESULTS = "optimization_results.yaml"
INTERRUPTED = "interrupted"
LOCK = ".search.lock"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@contextmanager
def only_search_in(sweep_dir: Path):
    """One search per sweep directory: a second would take the first's running trials for interrupted ones."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"error: another search is running in {sweep_dir}; wait for it, or stop it and run "
                "this command again to continue its study"
            ) from None
        yield


def set_aside(run_dir: Path, sweep_dir: Path) -> Path:
    """Move an interrupted trial's run directory out of the way of its retry, keeping its logs to read."""
    target = sweep_dir / INTERRUPTED / run_dir.name
    attempt = 1
    while target.exists():
        attempt += 1
        target = sweep_dir / INTERRUPTED / f"{run_dir.name}-{attempt}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run_dir), str(target))
    return target


def consecutive(trials: list) -> list[list]:
    """Trials (asked ones and interrupted ones, both with .number and .params) in runs of consecutive numbers:
    one launch each, so job numbers are trial numbers."""
    runs: list[list] = []
    for trial in sorted(trials, key=lambda t: t.number):
        if runs and trial.number == runs[-1][-1].number + 1:
            runs[-1].append(trial)
        else:
            runs.append([trial])
    return runs


class Search:
    def __init__(
        self,
        config: DictConfig,
        launch: Callable[[Sequence[Sequence[str]], int], Sequence[JobReturn]],
        check_batch: Callable[[Sequence[Sequence[str]]], None],
        settings: DictConfig,
    ):
        self.config = config
        self.launch = launch
        self.check_batch = check_batch
        self.settings = settings
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.metric = config.get("optimized_metric") or "objective"

    def run(self, arguments: list[str]) -> list[JobReturn]:
        with only_search_in(self.sweep_dir):
            space = search_space(
                OmegaConf.to_container(self.settings.params) if self.settings.params else {}, arguments
            )
            if not space.distributions:
                raise ValueError("hydra.sweeper.params is empty and the command line names no sweep: nothing to search")
            # compose one trial's config before the study is touched: a searched key that is not in the config
            # fails here, not as a trial
            self.check_batch(
                [trial_overrides({key: _drawable(d) for key, d in space.distributions.items()}, space.fixed)]
            )
            study = open_study(self.settings, space.fixed)
            returns = []
            retries = self._interrupted(study)
            while self._finished(study) < self.settings.n_trials:
                batch = retries[: self.settings.n_jobs]
                retries = retries[len(batch) :]
                if not batch:
                    wanted = min(self.settings.n_jobs, self.settings.n_trials - self._finished(study))
                    batch = [study.ask(space.distributions) for _ in range(wanted)]
                for run in consecutive(batch):
                    jobs = self.launch([trial_overrides(trial.params, space.fixed) for trial in run], run[0].number)
                    for trial, job in zip(run, jobs, strict=True):
                        self._tell(study, trial.number, job)
                    returns += jobs
                self._write_results(study)
                self._stop_if_failing(study)
            self._write_results(study)
            self._report(study)
            return returns

    def _interrupted(self, study: optuna.Study) -> list[FrozenTrial]:
        """Trials a killed search left running: asked, maybe started, never told. The validations the killed
        attempt reported stay in the study (Optuna keeps a step's first report); the retry, same seed and values,
        reports the same ones."""
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for trial in running:
            run_dir = trial.user_attrs.get(RUN_DIR)
            if run_dir and Path(run_dir).exists():
                log.info(
                    "trial %d was interrupted: running it again (its run directory moved to %s)",
                    trial.number,
                    set_aside(Path(run_dir), self.sweep_dir),
                )
            else:
                log.info("trial %d was interrupted before it trained: running it again", trial.number)
        return running

    @staticmethod
    def _finished(study: optuna.Study) -> int:
        return len(study.get_trials(deepcopy=False, states=FINISHED))

    def _tell(self, study: optuna.Study, number: int, job: JobReturn) -> None:
        error = job._return_value if job.status == JobStatus.FAILED else None
        if isinstance(error, optuna.TrialPruned):
            study.tell(number, state=TrialState.PRUNED)
            log.info("trial %d %s", number, error)
        elif error is not None:
            study.tell(number, state=TrialState.FAIL)
            log.warning("trial %d failed: %s: %s", number, type(error).__name__, error)
        elif job.return_value is None or not math.isfinite(job.return_value):
            study.tell(number, state=TrialState.FAIL)
            log.warning(
                "trial %d failed: it returned %s for %s (never validated?)", number, job.return_value, self.metric
            )
        else:
            study.tell(number, job.return_value)
            log.info("trial %d: %s=%.4g", number, self.metric, job.return_value)

    def _stop_if_failing(self, study: optuna.Study) -> None:
        # a share of n_trials, not of the trials so far: one early failure does not end a search of twenty
        failed, allowed = self._counts(study)["failed"], self.settings.max_failure_rate * self.settings.n_trials
        if failed > allowed:
            raise SystemExit(
                f"error: search stopped: {failed} trials failed, more than hydra.sweeper.max_failure_rate="
                f"{self.settings.max_failure_rate} of n_trials={self.settings.n_trials}; each failed "
                f"trial's train.log in {self.sweep_dir} says why"
            )

    @staticmethod
    def _counts(study: optuna.Study) -> dict[str, int]:
        trials = study.get_trials(deepcopy=False)
        return {
            "complete": sum(t.state == TrialState.COMPLETE for t in trials),
            "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials),
        }

    def _best(self, study: optuna.Study) -> FrozenTrial | None:
        return study.best_trial if self._counts(study)["complete"] else None

    def _write_results(self, study: optuna.Study) -> None:
        best = self._best(study)
        results = {
            "study_name": study.study_name,
            "storage": str(self.settings.storage),
            "direction": study.direction.name.lower(),
            "metric": self.metric,
            "trials": self._counts(study),
        }
        if best is not None:
            results |= {
                "best_trial": best.number,
                "best_value": best.value,
                "best_params": best.params,
                "best_run_dir": best.user_attrs.get(RUN_DIR),
            }
        (self.sweep_dir / RESULTS).write_text(yaml.safe_dump(results, sort_keys=False))

    def _report(self, study: optuna.Study) -> None:
        counts, best = self._counts(study), self._best(study)
        log.info(
            "study %s: %d complete, %d pruned, %d failed",
            study.study_name,
            counts["complete"],
            counts["pruned"],
            counts["failed"],
        )
        if best is None:
            log.warning("no trial completed")
        else:
            params = " ".join(f"{key}={value}" for key, value in best.params.items())
            log.info(
                "best: trial %d, %s=%.4g, %s (%s)",
                best.number,
                self.metric,
                best.value,
                params,
                self.sweep_dir / RESULTS,
            )
        if counts["failed"]:
            failed = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))]
            # pruned trials are no failure; a failed one is, as in a grid multirun
            raise SystemExit(
                f"error: {counts['failed']} of {sum(counts.values())} trials failed (trial "
                f"{', '.join(map(str, failed))}): python -m hakim.cli.sweep_summary {self.sweep_dir} shows why"
            )


def _drawable(distribution: BaseDistribution):
    """A value the distribution can draw, to compose a trial's config before any is asked."""
    return distribution.choices[0] if isinstance(distribution, CategoricalDistribution) else distribution.low
