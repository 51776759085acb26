"""Callbacks of our own (Lightning's checkpointing, early stopping and LR monitor are configured in YAML)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lightning as L


class RankAudit(L.Callback):
    """Write, per rank, the example ids it trained on and a fingerprint of its adapter weights.

    For checking a multi-process run: ranks must see different examples and end with identical weights.
    """

    def __init__(self, output_dir: str):
        self.output_dir = Path(output_dir)
        self.ids: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.ids.extend(batch["ids"])

    def on_train_end(self, trainer, pl_module) -> None:
        digest = hashlib.sha256()
        for name, tensor in sorted(pl_module.trainable_state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().numpy().round(6).tobytes())
        self.output_dir.mkdir(parents=True, exist_ok=True)
        audit = {"rank": trainer.global_rank, "world_size": trainer.world_size, "ids": self.ids, "weights_sha256": digest.hexdigest()}
        (self.output_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(audit) + "\n")
