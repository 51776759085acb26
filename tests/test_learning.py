"""The whole training path (4-bit base, LoRA, verdict position, loss) can fit a small training set.

If the verdict were read at the wrong position, the completion mask were off, or gradients did not
reach the adapters through the 4-bit layers, a random tiny model could not memorize its own training rows.
"""

import json

import pytest

from conftest import compose_config
from hakim.data.dataset_io import read_split
from hakim.training import train


def test_tiny_4bit_model_memorizes_its_training_split(workspace, tiny_model_dir, sample_dataset, tmp_path):
    cfg = compose_config("train", workspace, tmp_path / "run", [
        "data.max_length=160", "data.batch_size=8", "data.val_split=train", "lora.r=16", "lora.dropout=0.0",
        "optim.optimizer.lr=1e-2", "optim.lm_loss_weight=0.0", "optim.verdict_loss_weight=1.0",
        "trainer.max_epochs=30", "+trainer.check_val_every_n_epoch=10", "trainer.enable_progress_bar=false",
    ])
    train(cfg)
    metrics = json.loads((tmp_path / "run" / "run.json").read_text())["metrics"]
    assert metrics["val/balanced_acc"] >= 0.8 and metrics["val/auroc"] >= 0.8, metrics
    # each task is learned, not only which task a row belongs to (pooled metrics would reward that too)
    sources = sorted({name.split("/")[1] for name in metrics if name.startswith("val/") and name.count("/") == 2})
    assert sources == ["boolq", "fib"]
    assert all(metrics[f"val/{source}/balanced_acc"] >= 0.8 for source in sources), metrics
    labels = {}
    for record in read_split(sample_dataset, "train"):
        labels.setdefault(record.source, set()).add(record.label)
    scored = [source for source in sources if labels[source] == {0, 1}]  # AUROC needs both classes
    assert scored and metrics["val/auroc"] == pytest.approx(sum(metrics[f"val/{s}/auroc"] for s in scored) / len(scored))
