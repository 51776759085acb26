"""`train(cfg)`: build the judge module, its data, callbacks and loggers from the config, fit, save the adapter.

Every object comes from a `_target_` config (conf/module, conf/data, conf/style, conf/model, conf/lora,
conf/optim), so its defaults live in the YAML alone. The run directory is written through RunDir;
whatever stops a run, the directory gets a run.json saying how it ended (`records_outcome`).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from optuna import TrialPruned

from hakim.data.dataset_io import resolve_dataset_dir
from hakim.prompting.style import PromptStyle
from hakim.provenance import git_state, package_versions, redact, redact_overrides, write_provenance
from hakim.runs.run_dir import RunDir
from hakim.train.checkpoints import given_checkpoint, load_checkpoint
from hakim.train.config_tree import print_config_tree
from hakim.train.datamodule import JudgeDataModule
from hakim.train.judge_module import JudgeModule, TrainingDiverged
from hakim.train.loggers import drop_redone_steps, start_loggers, wandb_run_id
from hakim.train.saved_config import rerun_config, resume_config

log = logging.getLogger(__name__)


def build_style(cfg: DictConfig) -> PromptStyle:
    return instantiate(cfg.style)


def build_module(cfg: DictConfig) -> JudgeModule:
    scheduler = instantiate(cfg.optim.scheduler) if cfg.optim.get("scheduler") else None
    # partial, then called: objects handed to instantiate() as keyword overrides would be turned into configs
    return instantiate(cfg.module, _partial_=True)(
        model=instantiate(cfg.model, _convert_="all"),
        lora=instantiate(cfg.lora, _convert_="all"),
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=scheduler,
    )


def build_datamodule(cfg: DictConfig, tokenizer) -> JudgeDataModule:
    datamodule = instantiate(cfg.data, _partial_=True)(style=build_style(cfg))
    datamodule.connect(tokenizer)
    return datamodule


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [instantiate(callback) for callback in (cfg.get("callbacks") or {}).values() if callback is not None]


def build_loggers(cfg: DictConfig) -> list:
    return [instantiate(logger) for logger in (cfg.get("logger") or {}).values() if logger is not None]


def _command_line_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _peak_memory_gb() -> dict:
    import resource

    peak = {"cpu_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
    if torch.cuda.is_available():
        peak["gpu_allocated"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return peak


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if callback is None:
        return None
    return callback.best_model_path or callback.last_model_path or None


def _log_adapter_artifact(cfg: DictConfig, loggers: list, adapter_dir: Path) -> None:
    wandb_settings = (cfg.get("logger") or {}).get("wandb")
    if not wandb_settings or not wandb_settings.get("log_adapter"):
        return
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            artifact = wandb.Artifact(
                f"adapter-{logger.experiment.id}",
                type="model",
                metadata={"base_model": cfg.model.name, "style": OmegaConf.to_container(cfg.style)},
            )
            artifact.add_dir(str(adapter_dir))
            logger.experiment.log_artifact(artifact)


def _finish_experiment_trackers(loggers: list) -> None:
    for logger in loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "finish") and rank_zero_only.rank == 0:
            experiment.finish()


def _planned_steps(trainer: L.Trainer) -> int | None:
    """The optimizer steps max_epochs / max_steps allow (None when neither bounds the run)."""
    planned = trainer.estimated_stepping_batches
    return int(planned) if math.isfinite(planned) else None


class TrainingSession:
    """One launch or resume of a run: its config, its directory, and the trainer once there is one."""

    def __init__(self, cfg: DictConfig, overrides: list[str], resumed_at_step: int | None = None):
        self.cfg = cfg
        self.run = RunDir(Path(cfg.paths.output_dir))
        self.overrides = overrides
        self.resumed_at_step = resumed_at_step
        self.started = time.time()
        self.trainer: L.Trainer | None = None

    @property
    def resuming(self) -> bool:
        return self.resumed_at_step is not None

    @property
    def global_step(self) -> int:
        return self.trainer.global_step if self.trainer else 0


def records_outcome(fit):
    """Whatever stops `fit(session)` (an error, a divergence, a search's pruner, Ctrl-C), run.json says how the run
    ended."""

    @functools.wraps(fit)
    def wrapper(session: TrainingSession):
        try:
            return fit(session)
        except BaseException as error:
            if rank_zero_only.rank == 0:
                session.run.write_summary(
                    {
                        "status": "diverged"
                        if isinstance(error, TrainingDiverged)
                        else "pruned"
                        if isinstance(error, TrialPruned)
                        else "failed",  # pruned: stopped by a search
                        "error": f"{type(error).__name__}: {error}",
                        "global_step": session.global_step,
                        "wall_seconds": round(time.time() - session.started, 1),
                        "tags": list(session.cfg.get("tags") or []),
                    }
                )
            raise

    return wrapper


def train(cfg: DictConfig) -> float | None:
    """Train one judge; returns the optimized metric of the adapter it keeps (for sweeps), or None if that
    adapter was never validated."""
    overrides = _command_line_overrides()
    step = None
    if cfg.get("resume"):
        cfg, step = resume_config(cfg, overrides)
    elif cfg.get("rerun"):
        cfg = rerun_config(cfg)
    if step is None and cfg.get("ckpt_path"):
        given_checkpoint(cfg.ckpt_path)  # before anything is written; resume_config checked its own
    if cfg.get("print_config") and rank_zero_only.rank == 0:
        print_config_tree(cfg)
    return fit(TrainingSession(cfg, overrides, step))


def _record_launch(session: TrainingSession) -> None:
    cfg, run = session.cfg, session.run
    if session.resuming:
        run.record_resume(
            {
                "checkpoint": cfg.ckpt_path,
                "step": session.resumed_at_step,
                "overrides": redact_overrides(session.overrides),
                "git": {key: value for key, value in git_state().items() if key != "diff"},
                "versions": package_versions(),
            }
        )
    else:
        write_provenance(run, OmegaConf.to_container(cfg, resolve=True), overrides=session.overrides, seed=cfg.seed)


@records_outcome
def fit(session: TrainingSession) -> float | None:
    cfg, run = session.cfg, session.run
    resolve_dataset_dir(cfg.data.dataset_dir)  # seconds, where loading the base model may take minutes
    earlier_wandb_run = wandb_run_id(run.path) if session.resuming else None
    if earlier_wandb_run and OmegaConf.select(cfg, "logger.wandb"):
        cfg.logger.wandb.id = earlier_wandb_run  # continue the same W&B run
    L.seed_everything(cfg.seed, workers=True)
    if rank_zero_only.rank == 0:
        _record_launch(session)

    module = build_module(cfg)
    datamodule = build_datamodule(cfg, module.tokenizer)
    if rank_zero_only.rank == 0 and not session.resuming:
        run.write_data_record(str(cfg.data.dataset_dir), datamodule.data_version)
    loggers = start_loggers(build_loggers(cfg), redact(OmegaConf.to_container(cfg, resolve=True)))
    if session.resuming:
        drop_redone_steps(loggers, session.resumed_at_step)
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=build_callbacks(cfg), logger=loggers or False, default_root_dir=str(run.path)
    )
    session.trainer = trainer
    try:  # W&B runs are closed here, whatever happens, not at process exit: a sweep's jobs get a run each
        fit_started = time.time()
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        fit_seconds = time.time() - fit_started
        if not trainer.is_global_zero:
            return None
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        best, kept_metrics = _keep_best_adapter(trainer, module, metrics)
        module.net.save_pretrained(run.adapter_dir)
        module.tokenizer.save_pretrained(run.adapter_dir)
        _log_adapter_artifact(cfg, loggers, run.adapter_dir)
    finally:
        _finish_experiment_trackers(loggers)
    _write_finished_run(session, module, datamodule, metrics, best, kept_metrics, fit_seconds)
    metric_name = cfg.get("optimized_metric")
    return kept_metrics.get(metric_name) if metric_name else None


def _keep_best_adapter(trainer: L.Trainer, module: JudgeModule, metrics: dict) -> tuple[str | None, dict]:
    """Load the best checkpoint's adapter into the module; (its path, the validation it was measured with)."""
    best = _best_checkpoint(trainer)
    if not best or trainer.fast_dev_run:
        return best, metrics
    kept = load_checkpoint(best)
    module.load_trainable_weights(kept["state_dict"])
    return best, kept.get("hakim", {}).get("validation") or metrics


def _write_finished_run(
    session: TrainingSession,
    module: JudgeModule,
    datamodule: JudgeDataModule,
    metrics: dict,
    best: str | None,
    kept_metrics: dict,
    fit_seconds: float,
) -> None:
    cfg, run, trainer = session.cfg, session.run, session.trainer
    tokens_this_session = module.tokens_trained - module.tokens_at_resume
    run.write_summary(
        {
            "status": "ok",
            "run_dir": str(run.path),
            "tags": list(cfg.get("tags") or []),
            "model_path": module.model_path,
            "best_checkpoint": best,
            "metrics": metrics,  # at the end of training
            "adapter_metrics": kept_metrics,  # the validation of the kept adapter (the best checkpoint)
            "data_report": datamodule.report,
            "global_step": trainer.global_step,
            "planned_steps": _planned_steps(trainer),  # more than global_step: stopped early (max_time, early stopping)
            "tokens_trained": module.tokens_trained,
            "tokens_per_second": round(tokens_this_session / fit_seconds, 1) if fit_seconds > 0 else None,
            "peak_memory_gb": _peak_memory_gb(),
            "wall_seconds": round(time.time() - session.started, 1),
        }
    )
    run.mark_latest(cfg.paths.runs_dir)
    log.info("run directory: %s", run.path)
