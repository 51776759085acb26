"""`compare(cfg)`: finished evaluations side by side, with pairwise McNemar tests (comparison.md/json)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from hakim.eval.report import PREDICTIONS_FILE, compare_judges, wide_console, write_comparison


def read_evaluation(path: str | Path) -> tuple[str, list[dict]]:
    """(judge name, rows) of a directory evaluate() wrote."""
    path = Path(path)
    predictions = path / PREDICTIONS_FILE
    if not predictions.exists():
        raise FileNotFoundError(
            f"{path} is not an evaluation output directory (no {PREDICTIONS_FILE}); pass directories evaluate.py wrote"
        )
    metrics = path / "metrics.json"
    name = json.loads(metrics.read_text())["judge"] if metrics.exists() else path.name
    with open(predictions, encoding="utf-8") as f:
        return name, [json.loads(line) for line in f if line.strip()]


def compare(cfg: DictConfig) -> dict:
    """Side-by-side metrics and pairwise McNemar tests of finished evaluations; writes comparison.md/json."""
    directories = [Path(d) for d in cfg.compare]
    if len(set(d.resolve() for d in directories)) < len(directories):
        raise ValueError(f"compare lists the same directory twice: {[str(d) for d in directories]}")
    loaded = [read_evaluation(d) for d in directories]
    names = [name for name, _ in loaded]
    # The same judge evaluated twice (another split, another threshold) is told apart by its directory.
    labels = [
        name if names.count(name) == 1 else f"{name} [{d.name}]" for name, d in zip(names, directories, strict=True)
    ]
    if len(set(labels)) < len(labels):
        raise ValueError(f"two of {[str(d) for d in directories]} have the same judge and directory name; rename one")
    named_rows = {label: rows for label, (_, rows) in zip(labels, loaded, strict=True)}
    table, _ = compare_judges(named_rows)
    wide_console().print(table)
    out_dir = Path(cfg.paths.output_dir)
    result = write_comparison(named_rows, out_dir)
    print(f"comparison.md and comparison.json: {out_dir}")
    return result
