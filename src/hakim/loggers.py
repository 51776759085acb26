"""Logger factories whose behaviour depends on the environment (kept out of YAML)."""

from __future__ import annotations

import os


def wandb_logger(project: str, save_dir: str, mode: str = "auto", entity: str | None = None,
                 tags: list[str] | None = None, log_model: bool = False, **kwargs):
    """A WandbLogger that never fails a run for lack of network: offline unless a key is set."""
    from lightning.pytorch.loggers import WandbLogger

    if mode == "auto":
        mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"logger.wandb.mode must be auto, online, offline or disabled, got {mode!r}")
    return WandbLogger(project=project, entity=entity, tags=list(tags or []), save_dir=save_dir,
                       offline=mode == "offline", mode=mode, log_model=log_model, **kwargs)
