"""Whether a run directory's saved config may be trained on again (`resume=`, `rerun=`).

A run directory can be handed to you, and its config.yaml names code: every `_target_` is a callable
Hydra will import and call with the arguments written beside it. A prefix such as `lightning.` admits
hundreds of functions, some of which unpickle a file (`lightning.fabric.utilities.cloud_io._load`) or
call another callable by name. So a saved config may name only the exact targets Hakim's own configs
name (tests/test_saved_config_trust.py checks this list against conf/), and may not ask for a model's
own code to be run.
"""

from __future__ import annotations

TRUSTED_TARGETS = frozenset({
    "hakim.models.loading.LoraSpec",
    "hakim.models.loading.ModelSpec",
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
})


class UntrustedConfig(ValueError):
    """A saved config that resume=/rerun= refuse to build."""


def check_saved_config(config: dict, where: str) -> None:
    """What resume= and rerun= train from: a config of this layout that builds only TRUSTED_TARGETS and runs
    no code shipped with the model."""
    check_current_layout(config, where)
    check_targets(config, where)
    if (config.get("model") or {}).get("trust_remote_code"):
        raise UntrustedConfig(f"{where} sets model.trust_remote_code: true, which runs code shipped with the model; "
                              "resume=/rerun= refuse it in a saved run. If you trust that model, train it anew with "
                              "model.trust_remote_code=true on your own command line")


def check_current_layout(config: dict, where: str) -> None:
    """A saved config from before the `style`, `module` and `exact_resume` configs cannot be trained on."""
    missing = [key for key in ("style", "module") if key not in config]
    if missing or "exact_resume" not in (config.get("callbacks") or {}):
        raise UntrustedConfig(f"{where} was written by an older Hakim (no {', '.join(missing) or 'callbacks.exact_resume'}): "
                              "it can still be evaluated and exported, but resume=/rerun= need a run trained with this version")


def check_targets(config, where: str, path: str = "") -> None:
    """Refuse a saved config with a `_target_` that is not exactly one of TRUSTED_TARGETS, at any depth."""
    if isinstance(config, dict):
        target = config.get("_target_")
        if "_target_" in config and not (isinstance(target, str) and target in TRUSTED_TARGETS):
            raise UntrustedConfig(f"{where}: {path or 'the config'}._target_ is {target!r}, which no Hakim "
                                  "config names; a saved run may build only Hakim's own targets. Train a new run instead")
        for key, value in config.items():
            check_targets(value, where, f"{path}.{key}" if path else str(key))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            check_targets(value, where, f"{path}[{index}]")
