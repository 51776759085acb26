"""Pruning for a search's trials (conf/hparams_search/): report the monitored metric to the trial at every
validation, and stop the run with optuna.TrialPruned when the study's pruner says it is losing.

The trial is the Hydra job this run is: job number = trial number in the study `hydra.sweeper` names (Hakim's
Optuna sweeper launches them so). Outside such a search (a single run, `resume=` or `rerun=` of a trial's
directory) the callback does nothing. run.json then says `pruned`, with the step (hakim.train.fit).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import optuna
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from hakim.search.study import RUN_DIR, job_trial

SWEEPER = "hydra_plugins.hakim_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def _this_jobs_trial() -> optuna.Trial | None:
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN or hydra.sweeper.get("_target_") != SWEEPER:
        return None
    return job_trial(hydra.sweeper, hydra.job.num)


class OptunaPruning(L.Callback):
    def __init__(self, monitor: str):
        self.monitor = monitor
        self.trial: optuna.Trial | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # rank 0 alone speaks to the study; the other ranks follow its decision (on_validation_end)
        self.trial = _this_jobs_trial() if trainer.is_global_zero else None
        if self.trial is not None:
            self.trial.set_user_attr(RUN_DIR, str(Path(trainer.default_root_dir).resolve()))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        pruned, reason = False, ""
        if self.trial is not None:
            if self.monitor not in trainer.callback_metrics:
                raise ValueError(
                    f"callbacks.optuna_pruning.monitor={self.monitor} was not logged by this validation "
                    f"(logged: {', '.join(sorted(trainer.callback_metrics))}); set it to one of those"
                )
            value, step = float(trainer.callback_metrics[self.monitor]), trainer.global_step
            self.trial.report(value, step)
            pruned = self.trial.should_prune()
            reason = (
                f"pruned at step {step}: {self.monitor}={value:.4g}, losing to the study's other trials at that step"
            )
        if trainer.world_size > 1:
            pruned = trainer.strategy.broadcast(pruned, src=0)
        if pruned:
            raise optuna.TrialPruned(reason or f"pruned at step {trainer.global_step} by rank 0's report to the study")
