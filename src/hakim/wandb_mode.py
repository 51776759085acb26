"""Which mode a W&B run starts in: the one rule training's logger and evaluation's report share."""

from __future__ import annotations

import os

# what W&B itself accepts in WANDB_MODE, as the mode Lightning's logger is given
WANDB_MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline", "disabled": "disabled"}


def wandb_mode(mode: str) -> str:
    """auto: WANDB_MODE when set, else online when WANDB_API_KEY is set, else offline, so a run never
    fails for lack of network and a user's WANDB_MODE=offline holds even with a key in the environment."""
    if mode == "auto":
        if os.environ.get("WANDB_MODE"):
            if os.environ["WANDB_MODE"] not in WANDB_MODES:
                raise ValueError(
                    f"WANDB_MODE must be one of {', '.join(WANDB_MODES)}, got {os.environ['WANDB_MODE']!r}"
                )
            return WANDB_MODES[os.environ["WANDB_MODE"]]
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"logger.wandb.mode must be auto, online, offline or disabled, got {mode!r}")
    return mode
