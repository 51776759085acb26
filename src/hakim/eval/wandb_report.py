"""Send an evaluation's tables and plots to Weights & Biases (offline unless a key is set)."""

from __future__ import annotations

from pathlib import Path

from hakim.wandb_mode import wandb_mode

TABLE_METRICS = (
    "n",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "balanced_accuracy",
    "mcc",
    "auroc",
    "brier",
    "ece",
    "unparsed_rate",
)


def log_evaluation(summary: dict, rows: list[dict], out_dir: Path, settings: dict, config: dict) -> str | None:
    """One W&B run holding the metrics per subset (judge and majority rows), predictions and PNGs."""
    import wandb

    run = wandb.init(
        project=settings["project"],
        entity=settings.get("entity"),
        tags=list(settings.get("tags") or []),
        mode=wandb_mode(settings["mode"]),
        dir=str(out_dir),
        job_type="evaluation",
        config=config,
        name=f"eval-{summary['judge']}",
    )
    metrics_table = wandb.Table(columns=["subset", "judge", *TABLE_METRICS])
    for subset, metrics in summary["subsets"].items():
        metrics_table.add_data(subset, summary["judge"], *(metrics.get(name) for name in TABLE_METRICS))
        metrics_table.add_data(subset, "majority", *(metrics["majority_baseline"].get(name) for name in TABLE_METRICS))
    columns = ["id", "source", "language", "label", "prediction", "probability", "parse_error"]
    if any(row.get("chunk") is not None for row in rows):  # chunked judging: which chunk decided, of how many
        columns += ["chunk", "chunk_count", "claim_sentence"]
    predictions = wandb.Table(columns=columns, data=[[row.get(name) for name in columns] for row in rows])
    images = {f"plots/{path.stem}": wandb.Image(str(path)) for path in sorted(out_dir.glob("*.png"))}
    run.log({"metrics": metrics_table, "predictions": predictions, **images})
    overall = summary["subsets"]["overall"]
    run.summary.update({f"eval/{name}": overall.get(name) for name in TABLE_METRICS})
    run_dir = run.dir
    run.finish()
    return run_dir
