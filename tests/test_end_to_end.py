"""prepare_data.py → train.py → evaluate.py as a user runs them, on the tiny 4-bit model."""

import json

import yaml

from conftest import run_entry_point


def test_prepare_train_evaluate_write_what_the_readme_promises(workspace, tiny_model_dir):
    run_entry_point("prepare_data.py", workspace, "corpus=sample")
    manifest = json.loads(
        (
            workspace
            / "data"
            / "sample"
            / (workspace / "data" / "sample" / "LATEST").read_text().strip()
            / "manifest.json"
        ).read_text()
    )
    assert manifest["checks"]["documents_in_several_splits"] == 0 and manifest["splits"]["eval"]["rows"] > 0

    run_entry_point(
        "train.py", workspace, "data.max_length=256", "trainer.max_epochs=1", "lora.r=4", "hydra.run.dir=runs/e2e"
    )
    run_dir = workspace / "runs" / "e2e"
    for name in (
        "config.yaml",
        "environment.json",
        "git.diff",
        "data.json",
        "run.json",
        "adapter/adapter_model.safetensors",
        "adapter/adapter_config.json",
        "adapter/tokenizer.json",
        "checkpoints/last.ckpt",
        "csv/metrics.csv",
    ):
        assert (run_dir / name).exists(), name
    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["versions"]["bitsandbytes"] and "lora.r=4" in environment["overrides"]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["quantization"] == "nf4"
    summary = json.loads((run_dir / "run.json").read_text())
    assert "val/balanced_accuracy" in summary["metrics"] and summary["global_step"] > 0

    result = run_entry_point("evaluate.py", workspace, "judge.run_dir=latest", "hydra.run.dir=runs/e2e_eval")
    eval_dir = workspace / "runs" / "e2e_eval"
    predictions = [json.loads(line) for line in (eval_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == manifest["splits"]["eval"]["rows"]
    assert all(row["prediction"] in (0, 1) and 0.0 <= row["probability"] <= 1.0 for row in predictions)
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    overall = metrics["subsets"]["overall"]
    for name in ("n", "accuracy", "precision", "recall", "f1", "balanced_accuracy", "mcc", "auroc"):
        assert name in overall
    assert "majority_baseline" in overall and (eval_dir / "report.md").exists()
    for plot in ("roc.png", "reliability.png", "confusion_overall.png"):
        assert (eval_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    assert "Balanced" in result.stdout or "balanced" in result.stdout
