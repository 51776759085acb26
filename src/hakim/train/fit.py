"""`train(cfg)`: compose the data, the judge module, callbacks and loggers, fit, save the adapter."""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from hakim.data.dataset_io import resolve_dataset_dir
from hakim.models.loading import LoraSpec, ModelSpec
from hakim.provenance import (
    git_state,
    package_versions,
    redact,
    redact_overrides,
    write_provenance,
)
from hakim.train.checkpoints import load_checkpoint, newest_checkpoint
from hakim.train.datamodule import JudgeDataModule
from hakim.train.judge_module import JudgeModule, TrainingDiverged
from hakim.train.loggers import start_loggers, wandb_run_id
from hakim.train.schedules import warmup_schedule

log = logging.getLogger(__name__)
ADAPTER_DIR = "adapter"
RUN_SUMMARY = "run.json"
LATEST_RUN_POINTER = "LATEST"
RESUMES = "resumes.jsonl"


def build_module(cfg: DictConfig) -> JudgeModule:
    scheduler = functools.partial(warmup_schedule, **OmegaConf.to_container(cfg.optim.scheduler)) if cfg.optim.scheduler else None
    return JudgeModule(
        model=ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True)),
        lora=LoraSpec(**OmegaConf.to_container(cfg.lora, resolve=True)),
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=scheduler,
        verdict_loss_weight=cfg.optim.verdict_loss_weight,
        loss_chunk_size=cfg.optim.loss_chunk_size,
        lm_loss_weight=cfg.optim.lm_loss_weight,
        class_balanced=cfg.optim.class_balanced,
        seed=cfg.seed,
    )


def build_datamodule(cfg: DictConfig, tokenizer) -> JudgeDataModule:
    options = {**OmegaConf.to_container(cfg.data, resolve=True), **OmegaConf.to_container(cfg.variant, resolve=True)}
    datamodule = JudgeDataModule(seed=cfg.seed, **options)
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


# What `resume=` may change: when the run stops and what it reports, never what it computes.
RESUME_SAFE_OVERRIDES = ("trainer.max_time", "trainer.log_every_n_steps", "trainer.enable_progress_bar",
                         "callbacks.last_checkpoint.every_n_train_steps", "data.num_workers")


def _resume_overrides(cfg: DictConfig, overrides: list[str]) -> dict:
    """The command line's overrides other than `resume=` itself, refused unless safe to change mid-run."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = [override.key_or_group for override in OverridesParser.create().parse_overrides(overrides)]
    keys = [key for key in keys if key not in ("resume", "ckpt_path")]
    unsafe = [key for key in keys if key not in RESUME_SAFE_OVERRIDES]
    if unsafe:
        raise ValueError(f"resume= continues a run with its saved config; {', '.join(unsafe)} would change what it "
                         f"computes. Only {', '.join(RESUME_SAFE_OVERRIDES)} may be changed; start a new run otherwise")
    return {key: OmegaConf.select(cfg, key) for key in keys}


def resume_config(cfg: DictConfig, overrides: list[str] = ()) -> DictConfig:
    """The saved config of the run named by `resume=RUN_DIR`, pointed at that run's newest readable
    checkpoint, with the safe overrides of this command line applied."""
    run_dir = Path(cfg.resume)
    if not (run_dir / "config.yaml").exists():
        raise FileNotFoundError(f"resume={run_dir}: not a Hakim run directory (no config.yaml)")
    changes = _resume_overrides(cfg, list(overrides))
    checkpoint, step = newest_checkpoint(run_dir / "checkpoints")
    saved = OmegaConf.load(run_dir / "config.yaml")
    for key, value in changes.items():
        before = OmegaConf.select(saved, key)
        # Lightning's timer keeps its elapsed time in the checkpoint only when the run had a time limit
        timing = ("; the limit counts the time already trained" if before is not None else "; the limit counts from now")
        log.info("resume: %s=%s (was %s)%s", key, value, before, timing if key == "trainer.max_time" else "")
        OmegaConf.update(saved, key, value, force_add=True)
    log.info("resume: continuing %s from %s (step %d)", run_dir, checkpoint.name, step)
    saved.resume = None
    saved.ckpt_path = str(checkpoint)
    saved.paths.output_dir = str(run_dir)
    return saved


def _record_resume(run_dir: Path, cfg: DictConfig, overrides: list[str]) -> None:
    """Append this resume to resumes.jsonl; config.yaml and environment.json keep describing the original start."""
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "checkpoint": cfg.ckpt_path,
              "step": int(load_checkpoint(cfg.ckpt_path)["global_step"]), "overrides": redact_overrides(overrides),
              "git": {key: value for key, value in git_state().items() if key != "diff"}, "versions": package_versions()}
    with (run_dir / RESUMES).open("a") as file:
        file.write(json.dumps(record) + "\n")


def _replace_prefix(value, old: str, new: str):
    if isinstance(value, dict):
        return {key: _replace_prefix(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_prefix(item, old, new) for item in value]
    if isinstance(value, str) and value.startswith(old):
        return new + value[len(old):]
    return value


def rerun_config(cfg: DictConfig) -> DictConfig:
    """The saved config of `rerun=RUN_DIR`, trained again from scratch into this run's directory, on the
    exact dataset version that run used (data.json), even if the dataset was prepared again since."""
    run_dir = Path(cfg.rerun)
    if not (run_dir / "config.yaml").exists():
        raise FileNotFoundError(f"rerun={run_dir}: not a Hakim run directory (no config.yaml)")
    saved = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
    saved = _replace_prefix(saved, saved["paths"]["output_dir"], str(cfg.paths.output_dir))
    saved["rerun"] = None
    data = json.loads((run_dir / "data.json").read_text())
    saved["data"]["dataset_dir"] = str(resolve_dataset_dir(data["dataset_dir"]).parent / data["version"])
    return OmegaConf.create(saved)


def _log_adapter_artifact(cfg: DictConfig, loggers: list, adapter_dir: Path) -> None:
    wandb_settings = (cfg.get("logger") or {}).get("wandb")
    if not wandb_settings or not wandb_settings.get("log_adapter"):
        return
    import wandb

    for logger in loggers:
        if hasattr(logger, "log_table"):
            artifact = wandb.Artifact(f"adapter-{logger.experiment.id}", type="model",
                                      metadata={"base_model": cfg.model.name, "variant": cfg.variant.variant})
            artifact.add_dir(str(adapter_dir))
            logger.experiment.log_artifact(artifact)


def _finish_experiment_trackers(loggers: list) -> None:
    """Close W&B runs here, not at process exit, so the jobs of an in-process sweep get a run each."""
    for logger in loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "finish") and rank_zero_only.rank == 0:
            experiment.finish()


def _planned_steps(trainer: L.Trainer) -> int | None:
    """The optimizer steps max_epochs / max_steps allow (None when neither bounds the run)."""
    planned = trainer.estimated_stepping_batches
    return int(planned) if math.isfinite(planned) else None


def _write_failure(run_dir: Path, error: BaseException, global_step: int, started: float) -> None:
    failure = {"status": "diverged" if isinstance(error, TrainingDiverged) else "failed",
               "error": f"{type(error).__name__}: {error}", "global_step": global_step,
               "wall_seconds": round(time.time() - started, 1)}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_SUMMARY).write_text(json.dumps(failure, indent=2) + "\n")


def train(cfg: DictConfig) -> float | None:
    """Train one judge; returns the optimized metric of the adapter it keeps (for sweeps), or None if that
    adapter was never validated. Whatever stops it, the run directory gets a run.json saying how it ended."""
    started = time.time()
    overrides = _command_line_overrides()
    resuming = bool(cfg.get("resume"))
    if resuming:
        cfg = resume_config(cfg, overrides)
    elif cfg.get("rerun"):
        cfg = rerun_config(cfg)
    run_dir = Path(cfg.paths.output_dir)
    state = {"trainer": None}
    try:
        return _train(cfg, run_dir, resuming, overrides, started, state)
    except BaseException as error:
        trainer = state["trainer"]
        if rank_zero_only.rank == 0:
            _write_failure(run_dir, error, trainer.global_step if trainer else 0, started)
        raise


def _train(cfg: DictConfig, run_dir: Path, resuming: bool, overrides: list[str], started: float, state: dict) -> float | None:
    resolve_dataset_dir(cfg.data.dataset_dir)  # seconds, where loading the base model may take minutes
    if resuming and OmegaConf.select(cfg, "logger.wandb") and wandb_run_id(run_dir):
        cfg.logger.wandb.id = wandb_run_id(run_dir)  # continue the same W&B run
    L.seed_everything(cfg.seed, workers=True)
    if rank_zero_only.rank == 0 and resuming:
        _record_resume(run_dir, cfg, overrides)
    elif rank_zero_only.rank == 0:
        write_provenance(run_dir, OmegaConf.to_container(cfg, resolve=True), overrides=overrides, seed=cfg.seed)

    module = build_module(cfg)
    datamodule = build_datamodule(cfg, module.tokenizer)
    if rank_zero_only.rank == 0 and not resuming:
        (run_dir / "data.json").write_text(
            json.dumps({"dataset_dir": str(cfg.data.dataset_dir), "version": datamodule.data_fingerprint}, indent=2) + "\n"
        )
    loggers = start_loggers(build_loggers(cfg), redact(OmegaConf.to_container(cfg, resolve=True)))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=build_callbacks(cfg), logger=loggers or False,
                                     default_root_dir=str(run_dir))
    state["trainer"] = trainer
    fit_started = time.time()
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    except BaseException:
        _finish_experiment_trackers(loggers)
        raise
    fit_seconds = time.time() - fit_started

    metric_name = cfg.get("optimized_metric")
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    if not trainer.is_global_zero:
        _finish_experiment_trackers(loggers)
        return None
    best = _best_checkpoint(trainer)
    kept_metrics = metrics
    if best and not trainer.fast_dev_run:
        kept = load_checkpoint(best)
        module.load_trainable_weights(kept["state_dict"])
        kept_metrics = kept.get("hakim", {}).get("validation") or metrics
    module.net.save_pretrained(run_dir / ADAPTER_DIR)
    module.tokenizer.save_pretrained(run_dir / ADAPTER_DIR)
    _log_adapter_artifact(cfg, loggers, run_dir / ADAPTER_DIR)
    _finish_experiment_trackers(loggers)

    tokens_this_session = module.tokens_trained - module.tokens_at_resume
    summary = {
        "status": "ok",
        "run_dir": str(run_dir),
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
        "wall_seconds": round(time.time() - started, 1),
    }
    (run_dir / RUN_SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    pointer = Path(cfg.paths.runs_dir) / LATEST_RUN_POINTER
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(str(run_dir.resolve()) + "\n")
    log.info("run directory: %s", run_dir)
    return kept_metrics.get(metric_name) if metric_name else None
