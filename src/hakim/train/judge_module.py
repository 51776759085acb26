"""The LightningModule: a 4-bit (or unquantized) causal LM with LoRA and our own SFT step.

The loss is cross-entropy on completion tokens only, and the vocabulary projection is applied only
at those positions: a full (batch × sequence × vocabulary) logits tensor is what runs a 7B model
out of memory, and the prompt positions never contribute to the loss anyway.

The module holds the model, the loss, the metrics and the guards against non-finite numbers; what runs around
training (exact resume, throughput, gradient norm, prediction tables) is in callbacks (conf/callbacks/).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score, MulticlassAccuracy

from hakim.errors import HakimError
from hakim.models.loading import (
    LoraSpec,
    ModelSpec,
    add_lora,
    backbone_and_head,
    load_base_model,
    load_tokenizer,
    resolve_model_path,
)
from hakim.prompting.prompt import IGNORE_INDEX
from hakim.verdict import label_token_ids, probability_at


def completion_cross_entropy(hidden: torch.Tensor, labels: torch.Tensor, head: torch.nn.Module, chunk_size: int = 2048):
    """Mean next-token cross-entropy over completion positions, projecting only those hidden states.

    Projection and loss run in chunks of `chunk_size` positions so the float32 logits held at once are
    at most chunk_size × vocabulary.
    """
    targets = labels[:, 1:]
    selected = targets != IGNORE_INDEX
    states = hidden[:, :-1][selected]
    wanted = targets[selected]
    if wanted.numel() == 0:
        raise ValueError("a batch has no completion tokens; check the completion mask")
    total = states.new_zeros((), dtype=torch.float32)
    for start in range(0, wanted.numel(), chunk_size):
        logits = head(states[start : start + chunk_size]).float()
        total = total + F.cross_entropy(logits, wanted[start : start + chunk_size], reduction="sum")
    return total / wanted.numel(), wanted.numel()


class TrainingDiverged(HakimError, FloatingPointError):
    """Training broke down (non-finite numbers, or a loss the watchdog gave up on); run.json says `diverged`."""


LOWER_LR = "lower optim.optimizer.lr (or raise optim.scheduler.warmup_ratio) or check the data"


def _all_finite(tensors) -> bool:
    tensors = list(tensors)
    return not tensors or bool(torch.stack([tensor.detach().isfinite().all() for tensor in tensors]).all())


def _metrics(prefix: str) -> MetricCollection:
    return MetricCollection(
        {
            "accuracy": BinaryAccuracy(),
            "f1": BinaryF1Score(),
            "balanced_accuracy": MulticlassAccuracy(num_classes=2, average="macro"),
            "auroc": BinaryAUROC(),
        },
        prefix=prefix,
    )


class JudgeModule(L.LightningModule):
    def __init__(
        self,
        model: ModelSpec,
        lora: LoraSpec,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable | None,
        verdict_loss_weight: float,
        loss_chunk_size: int,
        lm_loss_weight: float,
        class_balanced: bool,
    ):
        """The arguments after `scheduler` come from conf/module/ (their one set of defaults)."""
        super().__init__()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        if lm_loss_weight <= 0 and verdict_loss_weight <= 0:
            raise ValueError(
                "module.lm_loss_weight and module.verdict_loss_weight are both 0: nothing would be trained"
            )
        self.verdict_loss_weight = verdict_loss_weight
        self.lm_loss_weight = lm_loss_weight
        self.class_balanced = class_balanced
        self.class_weights: torch.Tensor | None = None
        self.loss_chunk_size = loss_chunk_size
        self.model_path = resolve_model_path(model)
        self.tokenizer = load_tokenizer(self.model_path, model.trust_remote_code)
        self.label_ids = label_token_ids(self.tokenizer)
        self.net = add_lora(load_base_model(model, self.model_path), model, lora)
        # from_pretrained returns modules in eval mode, and Lightning keeps each module's mode: without
        # this, LoRA dropout would silently be off during training.
        self.net.train()
        self.strict_loading = False
        self.tokens_trained = 0
        self.tokens_at_resume = 0
        self.examples_trained = 0
        self.val_by_source = torch.nn.ModuleDict()
        self.scored_sources: list[str] = []
        self.best_balanced_acc = -math.inf

    def _hidden(self, batch: dict) -> torch.Tensor:
        backbone, _ = backbone_and_head(self.net)
        return backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state

    def model_step(self, batch: dict):
        hidden = self._hidden(batch)
        _, head = backbone_and_head(self.net)
        loss, n_tokens = completion_cross_entropy(hidden, batch["labels"], head, self.loss_chunk_size)
        # the position before the verdict token predicts it
        probability, pair_logits = probability_at(hidden, batch["verdict_index"] - 1, head, self.label_ids)
        weights = self.class_weights.to(pair_logits.device) if self.class_weights is not None else None
        verdict_loss = F.cross_entropy(pair_logits, batch["target"], weight=weights)
        return loss, verdict_loss, probability, n_tokens

    def on_fit_start(self) -> None:
        if self.class_balanced:
            # Each class weighs as much as the other in the verdict loss, so the majority answer stops being free.
            counts = torch.tensor(self.trainer.datamodule.label_counts("train"), dtype=torch.float32).clamp(min=1)
            self.class_weights = counts.sum() / (2 * counts)

    def weighted_loss(self, lm_loss: torch.Tensor, verdict_loss: torch.Tensor) -> torch.Tensor:
        """What training optimizes (logged as train/loss; its parts as train/lm_loss and train/verdict_loss)."""
        return self.lm_loss_weight * lm_loss + self.verdict_loss_weight * verdict_loss

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        loss, verdict_loss, _, n_tokens = self.model_step(batch)
        total = self.weighted_loss(loss, verdict_loss)
        if not torch.isfinite(total):
            raise TrainingDiverged(
                f"non-finite training loss at step {self.global_step} (batch {batch_index}); {LOWER_LR}. "
                "No update was applied and the last good checkpoint is kept."
            )
        size = batch["input_ids"].size(0)
        self.tokens_trained += int(batch["attention_mask"].sum())
        self.examples_trained += size
        self.log("train/loss", total, prog_bar=True, batch_size=size)
        self.log("train/lm_loss", loss, batch_size=size)
        self.log("train/verdict_loss", verdict_loss, batch_size=size)
        self.log("train/completion_tokens", float(n_tokens), reduce_fx="sum", batch_size=size)
        self.log("train/tokens", float(batch["attention_mask"].sum()), reduce_fx="sum", batch_size=size)
        return total

    def on_before_optimizer_step(self, optimizer) -> None:
        # Here with the loss and weight checks, not in a callback: callbacks are configurable, guards must not be.
        if not _all_finite(p.grad for p in self.net.parameters() if p.grad is not None):
            raise TrainingDiverged(
                f"non-finite gradients at step {self.global_step}; {LOWER_LR}. "
                "No update was applied and the last good checkpoint is kept."
            )

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        # Checked here, before the callbacks of this step run, so a checkpoint never holds the broken weights.
        if not _all_finite(p for p in self.net.parameters() if p.requires_grad):
            raise TrainingDiverged(
                f"the update of step {self.global_step} made adapter weights non-finite; {LOWER_LR}. "
                "The last good checkpoint is kept."
            )

    def setup(self, stage: str) -> None:
        """One set of validation metrics per source (task): pooled over BoolQ (62% yes) and FIB (15%
        consistent), AUROC and balanced accuracy reward knowing the task, not reading the passage."""
        datamodule = self.trainer.datamodule
        if datamodule is None or len(self.val_by_source):  # loaders passed in: sources are met in validation_step
            return
        labels_by_source = datamodule.labels_by_source("validation")
        for source in sorted(labels_by_source):
            self.val_by_source[source] = _metrics(f"val/{source}/")
        # the val/* means cover the sources whose validation rows hold both classes (else every source)
        self.scored_sources = [s for s in sorted(labels_by_source) if len(labels_by_source[s]) == 2] or sorted(
            labels_by_source
        )

    def validation_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        """Updates the metrics; returns each row's P(consistent) for callbacks (the prediction table)."""
        loss, verdict_loss, probability, _ = self.model_step(batch)
        size = batch["input_ids"].size(0)
        # sync_dist: under DDP each rank holds a different share of the rows; the logged value is their mean
        self.log("val/loss", self.weighted_loss(loss, verdict_loss), prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val/lm_loss", loss, batch_size=size, sync_dist=True)
        self.log("val/verdict_loss", verdict_loss, batch_size=size, sync_dist=True)
        for source in set(batch["sources"]):
            rows = torch.tensor([s == source for s in batch["sources"]], device=probability.device)
            if source not in self.val_by_source:  # validation rows that setup() did not see (a loader passed in)
                self.val_by_source[source] = _metrics(f"val/{source}/").to(probability.device)
            metrics = self.val_by_source[source]
            p, target = probability[rows], batch["target"][rows]
            metrics[f"val/{source}/accuracy"].update(p, target)
            metrics[f"val/{source}/f1"].update(p, target)
            metrics[f"val/{source}/balanced_accuracy"].update((p >= 0.5).long(), target)
            metrics[f"val/{source}/auroc"].update(p, target)
            self.val_rows_by_source[source] = self.val_rows_by_source.get(source, 0) + int(rows.sum())
        return probability

    def on_validation_epoch_start(self) -> None:
        self.val_rows_by_source: dict[str, int] = {}

    def _source_mean_metrics(self) -> dict[str, torch.Tensor]:
        """Every source's validation metrics, and val/<metric> as their mean over the scored sources."""
        # Which sources had rows, summed over ranks: every rank must compute (and so sync) the same metrics,
        # and a source with no rows this round (limit_val_batches) has no AUROC to compute.
        names = list(self.val_by_source.keys())
        rows = torch.tensor([float(self.val_rows_by_source.get(name, 0)) for name in names], device=self.device)
        rows = self.trainer.strategy.reduce(rows, reduce_op="sum")
        seen = [name for name, count in zip(names, rows.tolist(), strict=True) if count > 0]
        values: dict[str, torch.Tensor] = {}
        for source, metrics in self.val_by_source.items():
            if source in seen:
                values.update(metrics.compute())
            metrics.reset()
        scored = [s for s in self.scored_sources if s in seen] or seen
        for name in ("accuracy", "f1", "balanced_accuracy", "auroc"):
            values[f"val/{name}"] = torch.stack([values[f"val/{s}/{name}"].float() for s in scored]).mean()
        return values

    def on_validation_epoch_end(self) -> None:
        values = self._source_mean_metrics()
        self.log_dict(values, prog_bar=True)
        balanced = float(values["val/balanced_accuracy"])
        if not self.trainer.sanity_checking:
            self.best_balanced_acc = max(self.best_balanced_acc, balanced)
            self.log("val/balanced_accuracy_best", self.best_balanced_acc)

    def configure_optimizers(self):
        parameters = [parameter for parameter in self.net.parameters() if parameter.requires_grad]
        optimizer = self.optimizer_factory(parameters)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=max(1, int(self.trainer.estimated_stepping_batches)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        trainable = {name for name, parameter in self.named_parameters() if parameter.requires_grad}
        return {name: tensor for name, tensor in self.state_dict().items() if name in trainable}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Only adapters change during training; the frozen (4-bit) base is rebuilt from its source.
        checkpoint["state_dict"] = self.trainable_state_dict()
        if not _all_finite(checkpoint["state_dict"].values()):
            raise TrainingDiverged(
                f"refusing to write a checkpoint with non-finite adapter weights at step {self.global_step}"
            )
        # the validation metrics these weights were last measured with: what the adapter kept from the best
        # checkpoint is reported (and returned to a sweep) with
        try:
            metrics = self.trainer.callback_metrics
        except RuntimeError:  # saved outside a Trainer (export, tests): no validation to record
            metrics = {}
        validation = {name: float(value) for name, value in metrics.items() if name.startswith("val/")}
        checkpoint["hakim"] = {
            "tokens_trained": self.tokens_trained,
            "examples_trained": self.examples_trained,
            "best_balanced_acc": self.best_balanced_acc,
            "validation": validation,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        counters = checkpoint.get("hakim", {})
        self.tokens_trained = self.tokens_at_resume = counters.get("tokens_trained", 0)
        self.examples_trained = counters.get("examples_trained", 0)
        self.best_balanced_acc = counters.get("best_balanced_acc", -math.inf)

    def load_trainable_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        missing = set(self.trainable_state_dict()) - set(state_dict)
        if missing:
            raise KeyError(f"checkpoint lacks {len(missing)} adapter weights, e.g. {sorted(missing)[:2]}")
        self.load_state_dict(state_dict, strict=False)
