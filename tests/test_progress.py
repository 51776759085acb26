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


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _progress_lines(caplog, steps_and_seconds, *, every_n_steps, every_seconds, steps_per_epoch):
    """Drive ProgressLog through optimizer steps taking the given seconds each, as Lightning calls it."""
    from types import SimpleNamespace

    from hakim.train.callbacks import ProgressLog

    clock = _Clock()
    callback = ProgressLog(every_n_steps=every_n_steps, every_seconds=every_seconds, clock=clock)
    trainer = SimpleNamespace(global_step=0, world_size=1, current_epoch=0, sanity_checking=False, callback_metrics={})
    trainer.estimated_stepping_batches = len(steps_and_seconds)
    module = SimpleNamespace(tokens_trained=0, examples_trained=0)
    with caplog.at_level(logging.INFO, logger="hakim.progress"):
        callback.on_train_start(trainer, module)
        for seconds in steps_and_seconds:
            clock.now += seconds
            trainer.global_step += 1
            module.tokens_trained += 100
            module.examples_trained += 2
            callback.on_train_batch_end(trainer, module, None, None, trainer.global_step - 1)
            if trainer.global_step % steps_per_epoch == 0:
                callback.on_train_epoch_end(trainer, module)
                trainer.current_epoch += 1
    return [record.getMessage() for record in caplog.records if record.name == "hakim.progress"]


def test_a_slow_run_logs_every_30_seconds_between_step_lines_and_at_each_epoch_end(caplog):
    # 22 steps of 12 s, as make demo: every 25 steps alone would print nothing at all
    lines = _progress_lines(caplog, [12.0] * 22, every_n_steps=25, every_seconds=30, steps_per_epoch=11)
    steps = [int(line.split()[1].split("/")[0]) for line in lines]
    assert steps == [3, 6, 9, 11, 14, 17, 20, 22]
    assert lines[3].endswith("end of epoch 1") and lines[-1].endswith("end of epoch 2")
    assert "8 tokens/s" in lines[0]  # 300 tokens over 36 s


def test_a_fast_run_logs_by_steps_and_an_epoch_end_already_logged_is_not_repeated(caplog):
    lines = _progress_lines(caplog, [0.1] * 8, every_n_steps=4, every_seconds=30, steps_per_epoch=4)
    assert [line.split(" | ")[0] for line in lines] == ["step 4/8", "step 8/8"]
    assert not any("end of epoch" in line for line in lines)
