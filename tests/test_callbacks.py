"""What the default callbacks (conf/callbacks/default.yaml) add to a run, and that the module trains without them."""

import csv
import json
import math

from safetensors.torch import load_file

from hakim.data.dataset_io import read_split
from hakim.train.fit import train

# two steps, one epoch, then one validation of the whole split
SHORT = [
    "data.max_length=160",
    "data.batch_size=4",
    "lora.r=4",
    "trainer.max_steps=2",
    "trainer.limit_train_batches=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
]


def logged(run_dir) -> list[dict]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def values(rows: list[dict], name: str) -> list[float]:
    return [float(row[name]) for row in rows if row.get(name)]


def test_the_default_callbacks_log_a_finite_gradient_norm_and_throughput(train_config, tmp_path):
    train(train_config(*SHORT))
    rows = logged(tmp_path / "run")
    norms = values(rows, "train/grad_norm")
    assert len(norms) == 2 and all(math.isfinite(norm) and norm > 0 for norm in norms)
    assert values(rows, "train/tokens_per_s") and all(speed > 0 for speed in values(rows, "train/tokens_per_s"))


def test_without_callbacks_the_module_still_trains_and_logs_its_metrics(train_config, tmp_path):
    train(train_config(*SHORT, "~callbacks"))
    rows = logged(tmp_path / "run")
    assert len(values(rows, "train/loss")) == 2 and values(rows, "train/tokens")
    assert values(rows, "val/auroc") and values(rows, "val/balanced_accuracy_best") and values(rows, "val/boolq/auroc")
    assert not {"train/grad_norm", "train/tokens_per_s"} & set(rows[0]), "these are the callbacks' metrics"
    adapter = load_file(tmp_path / "run" / "adapter" / "adapter_model.safetensors")
    # peft starts every lora_B at zero: a non-zero one was trained
    assert any(tensor.abs().sum() > 0 for name, tensor in adapter.items() if "lora_B" in name)


def test_wandb_gets_a_table_of_every_validated_row(train_config, sample_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    train(train_config(*SHORT, "logger=wandb"))
    tables = list((tmp_path / "run" / "wandb").glob("offline-run-*/files/media/table/val/predictions_*.table.json"))
    assert len(tables) == 1, tables
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["id", "label", "p_consistent"]
    labels = {record.id: record.label for record in read_split(sample_dataset, "validation")}
    validated = json.loads((tmp_path / "run" / "run.json").read_text())["data_report"]["validation"]["used"]
    assert len(table["data"]) == validated and len({row[0] for row in table["data"]}) == validated
    assert all(labels[id_] == label and 0 <= p <= 1 for id_, label, p in table["data"])


def test_train_loss_is_what_is_optimized_and_its_parts_are_logged_apart(train_config, tmp_path):
    train(train_config(*SHORT, "module.lm_loss_weight=0.5", "module.verdict_loss_weight=2.0"))
    rows = [row for row in logged(tmp_path / "run") if row.get("train/loss")]
    assert len(rows) == 2
    for row in rows:
        parts = 0.5 * float(row["train/lm_loss"]) + 2.0 * float(row["train/verdict_loss"])
        assert math.isclose(float(row["train/loss"]), parts, rel_tol=1e-5)
    validation = next(row for row in logged(tmp_path / "run") if row.get("val/loss"))
    assert math.isclose(
        float(validation["val/loss"]),
        0.5 * float(validation["val/lm_loss"]) + 2.0 * float(validation["val/verdict_loss"]),
        rel_tol=1e-5,
    )
