"""`train(cfg)`: compose the data, the judge module, callbacks and loggers, fit, save the adapter."""

from __future__ import annotations

import functools
import json
import logging
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hakim.datamodule import JudgeDataModule
from hakim.model import LoraSpec, ModelSpec
from hakim.module import JudgeModule
from hakim.provenance import write_provenance
from hakim.schedules import warmup_schedule

log = logging.getLogger(__name__)
ADAPTER_DIR = "adapter"
RUN_SUMMARY = "run.json"
LATEST_RUN_POINTER = "LATEST"


def build_module(cfg: DictConfig) -> JudgeModule:
    scheduler = functools.partial(warmup_schedule, **OmegaConf.to_container(cfg.optim.scheduler)) if cfg.optim.scheduler else None
    return JudgeModule(
        model=ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True)),
        lora=LoraSpec(**OmegaConf.to_container(cfg.lora, resolve=True)),
        optimizer=instantiate(cfg.optim.optimizer),
        scheduler=scheduler,
        verdict_loss_weight=cfg.optim.verdict_loss_weight,
        loss_chunk_size=cfg.optim.loss_chunk_size,
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


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if callback is None:
        return None
    return callback.best_model_path or callback.last_model_path or None


def train(cfg: DictConfig) -> float | None:
    """Train one judge; returns the optimized metric (for sweeps) or None if it was never computed."""
    run_dir = Path(cfg.paths.output_dir)
    L.seed_everything(cfg.seed, workers=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    write_provenance(run_dir, resolved, overrides=_command_line_overrides(), seed=cfg.seed)

    started = time.time()
    module = build_module(cfg)
    datamodule = build_datamodule(cfg, module.tokenizer)
    (run_dir / "data.json").write_text(
        json.dumps({"dataset_dir": str(cfg.data.dataset_dir), "version": datamodule.data_fingerprint}, indent=2) + "\n"
    )
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=build_callbacks(cfg), logger=build_loggers(cfg) or False,
                                     default_root_dir=str(run_dir))
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))

    best = _best_checkpoint(trainer)
    if best and not trainer.fast_dev_run:
        module.load_trainable_weights(torch.load(best, map_location="cpu", weights_only=False)["state_dict"])
    module.net.save_pretrained(run_dir / ADAPTER_DIR)
    module.tokenizer.save_pretrained(run_dir / ADAPTER_DIR)

    metric_name = cfg.get("optimized_metric")
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
    summary = {
        "run_dir": str(run_dir),
        "model_path": module.model_path,
        "best_checkpoint": best,
        "metrics": metrics,
        "data_report": datamodule.report,
        "global_step": trainer.global_step,
        "wall_seconds": round(time.time() - started, 1),
    }
    (run_dir / RUN_SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    pointer = Path(cfg.paths.runs_dir) / LATEST_RUN_POINTER
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(str(run_dir.resolve()) + "\n")
    log.info("run directory: %s", run_dir)
    if metric_name and metric_name in metrics:
        return metrics[metric_name]
    return None
