"""Learning-rate schedules with linear warmup, as step-wise LambdaLR."""

from __future__ import annotations

import math

from torch.optim.lr_scheduler import LambdaLR

KINDS = ("constant", "linear", "cosine")


def warmup_schedule(optimizer, total_steps: int, warmup_ratio: float = 0.03, kind: str = "constant") -> LambdaLR:
    """Warm up linearly over `warmup_ratio` of the steps, then stay constant or decay to zero."""
    if kind not in KINDS:
        raise ValueError(f"optim.scheduler.kind must be one of {KINDS}, got {kind!r}")
    warmup = max(1, math.ceil(total_steps * warmup_ratio)) if warmup_ratio > 0 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 1.0 - progress if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
