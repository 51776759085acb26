"""Exact resume: a run killed and resumed trains the same adapter, bit for bit, as one never stopped.

Two things would differ otherwise: where in the epoch the resumed run starts (ResumableLoader keeps the loader's
position in checkpoints, but Lightning does not hand it back), and the random numbers its dropout draws (a
fresh process has drawn none of the numbers the killed one drew before).
"""

from __future__ import annotations

import hashlib

import lightning as L
import torch


def batch_seed(seed: int, rank: int, epoch: int, batch_index: int) -> int:
    """The seed of one training batch's random draws (dropout): a function of where the batch sits in
    the run, so a resumed run draws the same numbers as an uninterrupted one wherever it was stopped."""
    digest = hashlib.sha256(f"{seed}/{rank}/{epoch}/{batch_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class ExactResume(L.Callback):
    """Continue a resumed run at the next unseen batch, and seed each batch's draws by its place in the run."""

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_start(self, trainer, pl_module) -> None:
        # Lightning builds the train loader early (configure_optimizers asks for estimated_stepping_batches),
        # before a resumed checkpoint's loader position is read, and then never hands that position to the
        # loader; hand it over here, before the first batch is drawn. (A private call: no public one does this.)
        trainer.fit_loop._load_combined_loader_states()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        torch.manual_seed(batch_seed(self.seed, trainer.global_rank, trainer.current_epoch, batch_idx))
