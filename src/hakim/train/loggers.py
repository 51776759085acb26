"""Loggers: a CSV logger that survives resumes, and W&B whose mode depends on the environment (kept out of YAML)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only

from hakim.wandb_mode import wandb_mode

log = logging.getLogger(__name__)


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing metrics.csv when it starts; this one appends to it, taking
    the file's header as the columns already written (a new column rewrites the file with the union)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


def _step(row: dict) -> int | None:
    try:
        return int(row["step"])
    except (TypeError, ValueError):  # the last line, cut off by a kill
        return None


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger whose csv/metrics.csv continues across `resume=` instead of starting over."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def drop_steps_from(self, step: int) -> None:
        """Before a run resumed from a checkpoint of `step` logs again: drop the rows of the steps it does again, so
        each step has one row. Lightning logs a batch's row, and a validation's, at the number of optimizer steps
        before that batch: a checkpoint of step S has seen the rows of steps below S."""
        path = self.experiment.metrics_file_path
        if not self._fs.isfile(path):
            return
        with self._fs.open(path, "r", newline="") as file:
            reader = csv.DictReader(file)
            columns, rows = reader.fieldnames or [], list(reader)
        kept = [row for row in rows if (logged := _step(row)) is not None and logged < step]
        if len(kept) == len(rows):
            return
        with self._fs.open(path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept)
        log.info(
            "resume: %d rows of steps %d and later dropped from %s (they are done again)",
            len(rows) - len(kept),
            step,
            path,
        )


def drop_redone_steps(loggers: list, step: int) -> None:
    """metrics.csv forgets the steps a run resumed from a checkpoint of `step` does again."""
    for logger in loggers:
        if isinstance(logger, ResumableCSVLogger):
            logger.drop_steps_from(step)


def wandb_run_id(run_dir: Path) -> str | None:
    """The id of the W&B run a run directory logged to (W&B names its folders `…-run-<time>-<id>`)."""
    folders = sorted(Path(run_dir).glob("wandb/*run-*-*"))
    return folders[-1].name.rsplit("-", 1)[-1] if folders else None


def wandb_logger(
    project: str,
    save_dir: str,
    mode: str = "auto",
    entity: str | None = None,
    tags: list[str] | None = None,
    log_model: bool = False,
    log_adapter: bool = False,
    **kwargs,
):
    """Lightning's WandbLogger with Hakim's mode rule (`log_adapter` is read by training, after fit)."""
    from lightning.pytorch.loggers import WandbLogger

    mode = wandb_mode(mode)
    return WandbLogger(
        project=project,
        entity=entity,
        tags=list(tags or []),
        save_dir=save_dir,
        offline=mode == "offline",
        mode=mode,
        log_model=log_model,
        **kwargs,
    )


def start_loggers(loggers: list, hyperparameters: dict) -> list:
    """The loggers that could record the run's hyperparameters (W&B starts its run here). A tracker that
    fails (no network, a server error) costs its own record, not the training run: a warning, and the
    run goes on with the others (the CSV logger)."""
    started = []
    for logger in loggers:
        try:
            logger.log_hyperparams(hyperparameters)
        except Exception as error:  # W&B raises its own error types, from several layers
            log.warning(
                "%s failed to start (%s: %s); training goes on without it",
                type(logger).__name__,
                type(error).__name__,
                str(error).splitlines()[0][:200] if str(error) else "",
            )
            continue
        started.append(logger)
    return started
