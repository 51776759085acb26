"""Plot validation metrics against training examples seen, for one or more runs.

`python -m hakim.cli.learning_curve RUN_DIR [RUN_DIR ...] --out curve.png [--metric val/balanced_accuracy]`
Examples seen = optimizer step × micro-batch × gradient accumulation, read from each run's config.
"""

from __future__ import annotations

from pathlib import Path

from hakim.runs.run_dir import METRICS, RunDir


def validation_points(run_dir: Path, metric: str) -> list[tuple[int, float]]:
    """(examples seen, metric) at every validation of the run, in order."""
    run = RunDir.open(run_dir)
    per_step = run.config["data"]["batch_size"] * (run.config["trainer"].get("accumulate_grad_batches") or 1)
    points = [((int(row["step"]) + 1) * per_step, float(row[metric])) for row in run.metrics_rows() if row.get(metric)]
    if not points:
        raise ValueError(f"{run_dir}: no '{metric}' in {METRICS} (did validation run?)")
    return points


def plot_learning_curves(
    run_dirs: list[Path], out: Path, metric: str = "val/balanced_accuracy", chance: float | None = 0.5
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for run_dir in run_dirs:
        examples, values = zip(*validation_points(run_dir, metric), strict=True)
        axis.plot(examples, values, marker="o", label=run_dir.name)
    if chance is not None:
        axis.axhline(chance, color="grey", linestyle=":", label="chance / always-majority")
    axis.set_xlabel("training examples seen")
    axis.set_ylabel(metric)
    axis.set_title(f"{metric} during training")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
