"""Logger factories whose behaviour depends on the environment (kept out of YAML)."""

from __future__ import annotations

import os


def wandb_mode(mode: str) -> str:
    """auto: online when WANDB_API_KEY is set, else offline, so a run never fails for lack of network."""
    if mode == "auto":
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"wandb mode must be auto, online, offline or disabled, got {mode!r}")
    return mode


def wandb_logger(project: str, save_dir: str, mode: str = "auto", entity: str | None = None,
                 tags: list[str] | None = None, log_model: bool = False, log_adapter: bool = False, **kwargs):
    """Lightning's WandbLogger with Hakim's mode rule (`log_adapter` is read by training, after fit)."""
    from lightning.pytorch.loggers import WandbLogger

    mode = wandb_mode(mode)
    return WandbLogger(project=project, entity=entity, tags=list(tags or []), save_dir=save_dir,
                       offline=mode == "offline", mode=mode, log_model=log_model, **kwargs)
