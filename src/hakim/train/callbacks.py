"""Callbacks of our own that watch and report training: throughput, gradient norm, W&B prediction table, loss
watchdog, progress log, rank audit (Lightning's checkpointing, early stopping and LR monitor are configured in YAML;
exact resume is in exact_resume.py)."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger

from hakim.train.judge_module import LOWER_LR, TrainingDiverged

progress_log = logging.getLogger("hakim.progress")


class RankAudit(L.Callback):
    """Write, per rank, the example ids it trained on, a fingerprint of its adapter weights and the
    validation metrics it logged.

    For checking a multi-process run: ranks must see different examples and end with identical weights
    and identical (reduced over all ranks) metrics.
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
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("val/")}
        audit = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "ids": self.ids,
            "weights_sha256": digest.hexdigest(),
            "metrics": metrics,
        }
        (self.output_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(audit) + "\n")


class Throughput(L.Callback):
    """train/tokens_per_s (a batch's tokens, padding excluded, over the time since the previous batch ended) and,
    on a GPU, train/gpu_peak_memory_gb."""

    def __init__(self):
        self.last_batch_end: float | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        previous, self.last_batch_end = self.last_batch_end, now
        if previous is not None:
            pl_module.log("train/tokens_per_s", float(batch["attention_mask"].sum()) / max(now - previous, 1e-9))
        if torch.cuda.is_available():
            pl_module.log("train/gpu_peak_memory_gb", torch.cuda.max_memory_allocated() / 2**30)


class GradNorm(L.Callback):
    """train/grad_norm: the norm of all gradients of a step, before the optimizer applies them (and before clipping)."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        gradients = [p.grad.detach().float().norm() for p in pl_module.parameters() if p.grad is not None]
        if gradients:
            pl_module.log("train/grad_norm", torch.stack(gradients).norm())


class PredictionTable(L.Callback):
    """Each validation's rows as the W&B table `val/predictions` (id, label, p_consistent), to read the examples a
    judge gets wrong. Only W&B takes tables; under DDP it gets rank 0's share of the rows."""

    def __init__(self):
        self.tables: list[WandbLogger] = []
        self.rows: list[list] = []

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.tables = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.rows = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.tables:  # outputs: the module's P(consistent) for each row of the batch
            self.rows.extend(
                [list(row) for row in zip(batch["ids"], batch["target"].tolist(), outputs.tolist(), strict=True)]
            )

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        for logger in self.tables:
            logger.log_table(
                "val/predictions", columns=["id", "label", "p_consistent"], data=self.rows, step=trainer.global_step
            )


class LossWatchdog(L.Callback):
    """Stop a run whose training has broken down without producing non-finite numbers.

    A spike: the training loss stays above `threshold` for `patience` optimizer steps in a row (after
    axolotl's loss_watchdog_threshold / loss_watchdog_patience). Stuck: the gradient norm (train/grad_norm,
    logged by GradNorm) is exactly 0 for `patience` steps in a row, as when a huge learning rate saturates the
    model and nothing can move it any more. Either raises TrainingDiverged, so run.json records status
    `diverged` and the step.
    """

    def __init__(self, threshold: float | None = None, patience: int = 3):
        if patience < 1:
            raise ValueError(f"callbacks.loss_watchdog.patience must be at least 1, got {patience}")
        self.threshold = threshold
        self.patience = patience
        self.spiking = 0
        self.stuck = 0
        self.last_step = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.last_step:  # a batch accumulated into a later optimizer step
            return
        self.last_step = trainer.global_step
        loss = float(outputs["loss"])
        self.spiking = self.spiking + 1 if self.threshold is not None and loss > self.threshold else 0
        norm = trainer.callback_metrics.get("train/grad_norm")
        self.stuck = self.stuck + 1 if norm is not None and float(norm) == 0 else 0
        if self.spiking >= self.patience:
            raise TrainingDiverged(
                f"training loss above callbacks.loss_watchdog.threshold={self.threshold} for "
                f"{self.patience} steps (now {loss:.4g} at step {trainer.global_step}); {LOWER_LR}"
            )
        if self.stuck >= self.patience:
            raise TrainingDiverged(
                f"gradient norm 0 for {self.patience} steps (step {trainer.global_step}, loss "
                f"{loss:.4g}): the model is saturated and no longer learns; {LOWER_LR}"
            )

    # kept in checkpoints, so a resumed run counts its patience on from where the killed one stopped
    def state_dict(self) -> dict:
        return {"spiking": self.spiking, "stuck": self.stuck, "last_step": self.last_step}

    def load_state_dict(self, state_dict: dict) -> None:
        self.spiking, self.stuck, self.last_step = state_dict["spiking"], state_dict["stuck"], state_dict["last_step"]


class ProgressLog(L.Callback):
    """A log line for logs read without a terminal (a cluster job's output, train.log): every
    `every_n_steps` optimizer steps or every `every_seconds`, whichever comes first, and once at the end of
    each epoch. It gives the step of planned, examples and tokens trained, tokens/s since the last line, an
    ETA from this session's pace, and the last validation."""

    def __init__(
        self,
        every_n_steps: int = 25,
        every_seconds: float = 30.0,
        metrics: tuple[str, ...] = ("val/auroc", "val/loss"),
        clock=time.monotonic,
    ):
        if every_n_steps < 1:
            raise ValueError(f"callbacks.progress_log.every_n_steps must be at least 1, got {every_n_steps}")
        if not every_seconds > 0:
            raise ValueError(f"callbacks.progress_log.every_seconds must be above 0, got {every_seconds}")
        self.every_n_steps = every_n_steps
        self.every_seconds = float(every_seconds)
        self.metrics = tuple(metrics)
        self.clock = clock
        self.last_validation = ""

    def on_train_start(self, trainer, pl_module) -> None:
        now = self.clock()
        self.session = (now, trainer.global_step)
        self.previous = (now, pl_module.tokens_trained)
        self.logged_step = trainer.global_step

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        values = [
            f"{name}={float(trainer.callback_metrics[name]):.4g}"
            for name in self.metrics
            if name in trainer.callback_metrics
        ]
        self.last_validation = f"last validation (step {trainer.global_step}): {' '.join(values)}"

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step, now = trainer.global_step, self.clock()
        if step == self.logged_step:
            return
        if step % self.every_n_steps == 0 or now - self.previous[0] >= self.every_seconds:
            self._log_line(trainer, pl_module, now)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.global_step != self.logged_step:
            self._log_line(trainer, pl_module, self.clock(), f"end of epoch {trainer.current_epoch + 1}")

    def _log_line(self, trainer, pl_module, now: float, occasion: str = "") -> None:
        step = trainer.global_step
        self.logged_step = step
        (started, first_step), (before, tokens_before) = self.session, self.previous
        tokens_per_second = (pl_module.tokens_trained - tokens_before) * trainer.world_size / max(now - before, 1e-9)
        self.previous = (now, pl_module.tokens_trained)
        planned = trainer.estimated_stepping_batches
        parts = [
            f"step {step}" + (f"/{int(planned)}" if math.isfinite(planned) else ""),
            f"{pl_module.examples_trained * trainer.world_size} examples",
            f"{tokens_per_second:,.0f} tokens/s",
        ]
        if math.isfinite(planned):
            remaining = (planned - step) * (now - started) / max(step - first_step, 1)
            parts.append(f"ETA {datetime.timedelta(seconds=round(remaining))}")
        if self.last_validation:
            parts.append(self.last_validation)
        if occasion:
            parts.append(occasion)
        progress_log.info(" | ".join(parts))
