"""RunDir: the one reader and writer of a run directory's files."""

import shutil

import pytest
import yaml

from hakim.prompting.style import PromptStyle
from hakim.runs.run_dir import NotARunError, RunDir
from hakim.verdict import Thresholds


def _config(run_dir):
    return {
        "paths": {"output_dir": str(run_dir)},
        "model": {"_target_": "hakim.models.loading.ModelSpec", "name": "m", "source": "local", "path": "/models/m"},
        "style": {"_target_": "hakim.prompting.style.PromptStyle", "variant": "v2", "claim_position": "before"},
        "data": {"dataset_dir": "data/sample", "max_length": 256},
        "callbacks": {"ckpt": {"dirpath": f"{run_dir}/checkpoints"}},
    }


def test_a_run_stores_its_own_paths_relative_and_reads_them_where_it_now_is(tmp_path):
    original = RunDir(tmp_path / "runs" / "a")
    original.write_config(_config(original.path))
    assert str(original.path) not in original.config_path.read_text()
    moved = tmp_path / "elsewhere" / "b"
    shutil.copytree(original.path, moved)
    run = RunDir.open(moved)
    assert run.config["callbacks"]["ckpt"]["dirpath"] == f"{moved}/checkpoints"
    assert run.config["paths"]["output_dir"] == str(moved)
    assert run.config["model"]["path"] == "/models/m"  # paths outside the run are left as they are
    assert run.model_spec.name == "m" and run.style == PromptStyle(claim_position="before") and run.max_length == 256


def test_a_run_written_with_absolute_paths_is_read_where_it_now_is(tmp_path):
    old_place = tmp_path / "old"
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "config.yaml").write_text(yaml.safe_dump(_config(old_place)))
    assert RunDir.open(tmp_path / "new").config["callbacks"]["ckpt"]["dirpath"] == f"{tmp_path / 'new'}/checkpoints"


def test_what_is_not_a_finished_run_is_refused_with_the_reason(tmp_path):
    with pytest.raises(NotARunError, match="not a Hakim run directory"):
        RunDir.open(tmp_path)
    RunDir(tmp_path).write_config(_config(tmp_path))
    with pytest.raises(NotARunError, match="training did not finish"):
        RunDir.open(tmp_path, trained=True)
    with pytest.raises(NotARunError, match="train a judge first"):
        RunDir.resolve("latest", tmp_path / "runs")


def test_thresholds_and_resumes_keep_what_was_there(tmp_path):
    run = RunDir(tmp_path)
    assert run.thresholds() == Thresholds()
    run.write_thresholds(Thresholds(0.4, {"fib": 0.2}), chosen_on="validation")
    assert run.thresholds() == Thresholds(0.4, {"fib": 0.2})
    run.environment_path.write_text('{"command": ["train.py"]}')
    run.record_resume({"step": 4})
    run.record_resume({"step": 10})
    environment = run.environment()
    assert environment["command"] == ["train.py"] and [r["step"] for r in environment["resumes"]] == [4, 10]


def test_a_finished_run_holds_exactly_the_files_of_the_run_table(train_config, tmp_path):
    from safetensors.torch import load_file

    from hakim.runs.run_dir import ADAPTER, CHECKPOINTS, METRICS, RUN_FILES, THRESHOLDS
    from hakim.train.fit import train

    train(
        train_config(
            "trainer.max_steps=2",
            "trainer.limit_train_batches=2",
            "trainer.log_every_n_steps=1",
            "lora.r=4",
            "trainer.enable_progress_bar=false",
            "print_config=false",
        )
    )
    run = tmp_path / "run"
    written_by_training = {name.split("/")[0] for name in RUN_FILES if name != THRESHOLDS}
    assert {path.name for path in run.iterdir()} == written_by_training
    assert {path.name for path in (run / METRICS).parent.iterdir()} == {"metrics.csv", "hparams.yaml"}  # Lightning's
    assert {path.name for path in (run / ADAPTER).iterdir()} == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "README.md",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert {path.name for path in (run / CHECKPOINTS).iterdir()} >= {"last.ckpt"}
    projections = [
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    ]  # lora.target_modules=all-linear: every projection, not the head
    expected = {
        f"base_model.model.model.layers.{layer}.{projection}.lora_{side}.weight"
        for layer in (0, 1)
        for projection in projections
        for side in ("A", "B")
    }
    assert set(load_file(run / ADAPTER / "adapter_model.safetensors")) == expected


def test_the_configs_write_checkpoints_and_metrics_where_the_run_table_says(workspace, tmp_path):
    from conftest import compose_config
    from hakim.runs.run_dir import CHECKPOINTS, METRICS

    cfg = compose_config("train", workspace, tmp_path)
    for callback in ("model_checkpoint", "last_checkpoint"):
        assert cfg.callbacks[callback].dirpath == f"{tmp_path}/{CHECKPOINTS}"
    csv_logger = cfg.logger.csv
    assert (
        f"{csv_logger.save_dir}/{csv_logger.name}/metrics.csv" == f"{tmp_path}/{METRICS}" and csv_logger.version == ""
    )
