"""A long run reports itself: a progress line for logs read without a terminal, the rows it trained on, and
(returned to a sweep) the validation of the adapter it keeps."""

import json
import logging

from hakim.train.fit import train


def test_progress_lines_and_the_rows_trained_on_after_a_cap(train_config, tmp_path, caplog):
    cfg = train_config(
        "data.max_train_examples=12",
        "data.batch_size=2",
        "data.max_length=160",
        "lora.r=4",
        "trainer.max_steps=4",
        "trainer.val_check_interval=2",
        "trainer.limit_val_batches=1",
        "callbacks.progress_log.every_n_steps=2",
    )
    with caplog.at_level(logging.INFO, logger="hakim.progress"):
        objective = train(cfg)
    lines = [record.getMessage() for record in caplog.records if record.name == "hakim.progress"]
    assert len(lines) == 2
    assert lines[0].startswith("step 2/4 | 4 examples | ") and "tokens/s | ETA " in lines[0]
    assert "last validation (step 2): val/auroc=" in lines[1] and "val/loss=" in lines[1]
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["data_report"]["train"]["trained_on"] == 12 < summary["data_report"]["train"]["used"]
    kept = summary["adapter_metrics"]
    assert f"auroc{kept['val/auroc']:.3f}.ckpt" in summary["best_checkpoint"]
    assert objective == kept["val/balanced_accuracy"]
