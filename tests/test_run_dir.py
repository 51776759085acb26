"""RunDir: the one reader and writer of a run directory's files."""

import shutil

import pytest
import yaml

from hakim.prompting.style import PromptStyle
from hakim.runs.run_dir import NotARunError, RunDir
from hakim.verdict import Thresholds


def _config(run_dir):
    return {"paths": {"output_dir": str(run_dir)}, "model": {"_target_": "hakim.models.loading.ModelSpec", "name": "m",
                                                           "source": "local", "path": "/models/m"},
            "style": {"_target_": "hakim.prompting.style.PromptStyle", "variant": "v2", "claim_position": "before"},
            "data": {"dataset_dir": "data/sample", "max_length": 256},
            "callbacks": {"ckpt": {"dirpath": f"{run_dir}/checkpoints"}}}


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
