"""Training again from a run directory's saved config: `resume=` continues it, `rerun=` repeats it.

What such a config may build, and what a resume may change.

A run directory can be handed to you, and its config.yaml names code: every `_target_` is a callable
Hydra will import and call with the arguments written beside it. A prefix such as `lightning.` admits
hundreds of functions, some of which unpickle a file (`lightning.fabric.utilities.cloud_io._load`) or
call another callable by name. So a saved config may name only the exact targets Hakim's own configs
name (tests/test_saved_config_trust.py checks this list against conf/), and may not ask for a model's
own code to be run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hakim.data.dataset_io import resolve_dataset_dir
from hakim.errors import HakimError
from hakim.runs.run_dir import RunDir
from hakim.train.checkpoints import given_checkpoint, newest_checkpoint

log = logging.getLogger(__name__)

TRUSTED_TARGETS = frozenset(
    {
        "hakim.models.loading.LoraSpec",
        "hakim.models.loading.ModelSpec",
        "hakim.prompting.chunks.Chunking",
        "hakim.prompting.style.PromptStyle",
        "hakim.train.callbacks.GradNorm",
        "hakim.train.callbacks.LossWatchdog",
        "hakim.train.callbacks.PredictionTable",
        "hakim.train.callbacks.ProgressLog",
        "hakim.train.callbacks.RankAudit",
        "hakim.train.callbacks.Throughput",
        "hakim.train.datamodule.JudgeDataModule",
        "hakim.train.exact_resume.ExactResume",
        "hakim.train.judge_module.JudgeModule",
        "hakim.train.loggers.ResumableCSVLogger",
        "hakim.train.loggers.wandb_logger",
        "hakim.train.pruning.OptunaPruning",
        "hakim.train.schedules.warmup_schedule",
        "torch.optim.AdamW",
        "bitsandbytes.optim.PagedAdamW8bit",
        "lightning.pytorch.Trainer",
        "lightning.pytorch.callbacks.EarlyStopping",
        "lightning.pytorch.callbacks.LearningRateMonitor",
        "lightning.pytorch.callbacks.ModelCheckpoint",
        "lightning.pytorch.profilers.SimpleProfiler",
        "lightning.pytorch.strategies.DDPStrategy",
        "lightning.pytorch.strategies.FSDPStrategy",
    }
)


class UntrustedConfig(HakimError, ValueError):
    """A saved config that resume=/rerun= refuse to build."""


def check_saved_config(config: dict, where: str) -> None:
    """What resume= and rerun= train from: a config of this layout that builds only TRUSTED_TARGETS and runs
    no code shipped with the model."""
    check_current_layout(config, where)
    check_targets(config, where)
    if (config.get("model") or {}).get("trust_remote_code"):
        raise UntrustedConfig(
            f"{where} sets model.trust_remote_code: true, which runs code shipped with the model; "
            "resume=/rerun= refuse it in a saved run. If you trust that model, train it anew with "
            "model.trust_remote_code=true on your own command line"
        )


def check_current_layout(config: dict, where: str) -> None:
    """A saved config from before the `style`, `module` and `exact_resume` configs cannot be trained on."""
    missing = [key for key in ("style", "module") if key not in config]
    if missing or "exact_resume" not in (config.get("callbacks") or {}):
        raise UntrustedConfig(
            f"{where} was written by an older Hakim (no {', '.join(missing) or 'callbacks.exact_resume'}): "
            "it can still be evaluated and exported, but resume=/rerun= need a run trained with this version"
        )


def check_targets(config, where: str, path: str = "") -> None:
    """Refuse a saved config with a `_target_` that is not exactly one of TRUSTED_TARGETS, at any depth."""
    if isinstance(config, dict):
        target = config.get("_target_")
        if "_target_" in config and not (isinstance(target, str) and target in TRUSTED_TARGETS):
            raise UntrustedConfig(
                f"{where}: {path or 'the config'}._target_ is {target!r}, which no Hakim "
                "config names; a saved run may build only Hakim's own targets. Train a new run instead"
            )
        for key, value in config.items():
            check_targets(value, where, f"{path}.{key}" if path else str(key))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            check_targets(value, where, f"{path}[{index}]")


# What `resume=` may change: when the run stops and what it reports, never what it computes.
RESUME_SAFE_OVERRIDES = (
    "trainer.max_time",
    "trainer.log_every_n_steps",
    "trainer.enable_progress_bar",
    "callbacks.last_checkpoint.every_n_train_steps",
    "data.num_workers",
    "print_config",
)


def _resume_overrides(cfg: DictConfig, overrides: list[str]) -> dict:
    """The command line's overrides other than `resume=` itself, refused unless safe to change mid-run."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = [override.key_or_group for override in OverridesParser.create().parse_overrides(overrides)]
    keys = [key for key in keys if key not in ("resume", "ckpt_path")]
    unsafe = [key for key in keys if key not in RESUME_SAFE_OVERRIDES]
    if unsafe:
        raise ValueError(
            f"resume= continues a run with its saved config; {', '.join(unsafe)} would change what it "
            f"computes. Only {', '.join(RESUME_SAFE_OVERRIDES)} may be changed; start a new run otherwise"
        )
    return {key: OmegaConf.select(cfg, key) for key in keys}


def resume_config(cfg: DictConfig, overrides: list[str] = ()) -> tuple[DictConfig, int]:
    """The saved config of the run named by `resume=RUN_DIR`, where that directory is now, pointed at its
    newest readable checkpoint (or the one `ckpt_path=` names), with the safe overrides of this command line
    applied; and that checkpoint's step."""
    run = RunDir.open(cfg.resume)
    changes = _resume_overrides(cfg, list(overrides))
    checkpoint, step = (
        given_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else newest_checkpoint(run.checkpoints_dir)
    )
    check_saved_config(run.config, str(run.config_path))
    saved = OmegaConf.create(run.config)
    for key, value in changes.items():
        before = OmegaConf.select(saved, key)
        # Lightning's timer keeps its elapsed time in the checkpoint only when the run had a time limit
        timing = "; the limit counts the time already trained" if before is not None else "; the limit counts from now"
        log.info("resume: %s=%s (was %s)%s", key, value, before, timing if key == "trainer.max_time" else "")
        OmegaConf.update(saved, key, value, force_add=True)
    log.info("resume: continuing %s from %s (step %d)", run.path, checkpoint.name, step)
    saved.resume = None
    saved.ckpt_path = str(checkpoint)
    return saved, step


def rerun_config(cfg: DictConfig) -> DictConfig:
    """The saved config of `rerun=RUN_DIR`, trained again from scratch into this run's directory, on the
    exact dataset version that run used (data.json), even if the dataset was prepared again since."""
    original = RunDir.open(cfg.rerun)
    saved = original.config_at(Path(cfg.paths.output_dir))
    check_saved_config(saved, str(original.config_path))
    saved["rerun"] = None
    data = original.data_record()
    saved["data"]["dataset_dir"] = str(resolve_dataset_dir(data["dataset_dir"]).parent / data["version"])
    return OmegaConf.create(saved)
