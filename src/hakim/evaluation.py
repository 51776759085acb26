"""`evaluate(cfg)`: score a judge on a prepared split and write predictions, metrics, report, plots."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from hakim.data.dataset_io import read_split, resolve_dataset_dir
from hakim.data.records import JudgeRecord
from hakim.judge import THRESHOLD_FILE, Judge
from hakim.prompts import PromptStyle
from hakim.report import print_summary, write_report
from hakim.training import LATEST_RUN_POINTER

log = logging.getLogger(__name__)


def resolve_run_dir(run_dir: str, runs_dir: str) -> Path:
    """`latest` means the run recorded in runs_dir/LATEST by the last training run."""
    if run_dir == "latest":
        pointer = Path(runs_dir) / LATEST_RUN_POINTER
        if not pointer.exists():
            raise FileNotFoundError(f"no {pointer}: train a judge first or pass run_dir=PATH")
        return Path(pointer.read_text().strip())
    path = Path(run_dir)
    if not (path / "config.yaml").exists():
        raise FileNotFoundError(f"{path} is not a Hakim run directory (no config.yaml)")
    return path


def verdict_rows(records: list[JudgeRecord], judge: Judge, mode: str) -> list[dict]:
    verdicts = judge.judge_batch([(r.passage, r.claim, r.source) for r in records], mode=mode)
    return [
        {
            "id": record.id,
            "source": record.source,
            "language": record.language,
            "label": record.label,
            "prediction": verdict.label,
            "probability": verdict.probability,
            "reasoning": verdict.reasoning,
            "raw_output": verdict.raw_output,
            "parse_error": verdict.parse_error,
            "passage_truncated": verdict.truncated,
            "passage": record.passage,
            "claim": record.claim,
        }
        for record, verdict in zip(records, verdicts)
    ]


def choose_threshold(labels: list[int], probabilities: list[float]) -> float:
    """The cut on P(1) that maximises balanced accuracy (ties: the one closest to 0.5)."""
    y = np.asarray(labels)
    p = np.asarray(probabilities, dtype=float)
    if y.min() == y.max():
        raise ValueError("cannot choose a threshold on a split with one class only")
    candidates = np.unique(np.append(p, 0.5))
    predicted = p[None, :] >= candidates[:, None]
    recall = (predicted & (y == 1)).sum(axis=1) / (y == 1).sum()
    specificity = (~predicted & (y == 0)).sum(axis=1) / (y == 0).sum()
    balanced = (recall + specificity) / 2
    best = np.flatnonzero(np.isclose(balanced, balanced.max()))
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def calibrate_threshold(judge: Judge, dataset_dir: Path, split: str, run_dir: Path) -> float:
    records = read_split(dataset_dir, split)
    probabilities, _ = judge.probabilities([(r.passage, r.claim, r.source) for r in records])
    threshold = choose_threshold([r.label for r in records], probabilities)
    (run_dir / THRESHOLD_FILE).write_text(json.dumps({"threshold": threshold, "chosen_on": split, "rows": len(records)}) + "\n")
    return threshold


def load_judge(cfg: DictConfig) -> tuple[Judge, Path | None, dict | None]:
    options = {"batch_size": cfg.batch_size, "max_new_tokens": cfg.max_new_tokens}
    if cfg.run_dir:
        run_dir = resolve_run_dir(cfg.run_dir, cfg.paths.runs_dir)
        run_config = yaml.safe_load((run_dir / "config.yaml").read_text())
        return Judge.load(run_dir, **options), run_dir, run_config
    if cfg.model_path:
        style = PromptStyle(**OmegaConf.to_container(cfg.style, resolve=True))
        return Judge.from_pretrained(cfg.model_path, style, quantization=cfg.quantization, max_length=cfg.max_length, **options), None, None
    raise ValueError("set run_dir=PATH (a training run, or 'latest') or model_path=PATH (a merged or base model)")


def evaluate(cfg: DictConfig) -> dict:
    judge, run_dir, run_config = load_judge(cfg)
    dataset_dir = cfg.dataset_dir or (run_config["data"]["dataset_dir"] if run_config else None)
    if not dataset_dir:
        raise ValueError("set dataset_dir=PATH: the judge has no training run to take it from")
    dataset_dir = resolve_dataset_dir(dataset_dir)
    if cfg.threshold == "validation":
        if run_dir is None or judge.default_mode != "score":
            raise ValueError("threshold=validation needs a score-mode judge from a run directory")
        judge.threshold = calibrate_threshold(judge, dataset_dir, cfg.threshold_split, run_dir)
    elif cfg.threshold is not None:
        judge.threshold = float(cfg.threshold)
    mode = cfg.mode or judge.default_mode
    records = read_split(dataset_dir, cfg.split)
    if cfg.limit:
        records = records[: cfg.limit]
    rows = verdict_rows(records, judge, mode)
    out_dir = Path(cfg.paths.output_dir)
    extra = {"mode": mode, "threshold": judge.threshold, "run_dir": str(run_dir) if run_dir else None,
             "model_path": cfg.model_path, "dataset_dir": str(dataset_dir), "split": cfg.split}
    summary = write_report(rows, out_dir, title=f"Hakim judge evaluation: {judge.name}", judge_name=judge.name, extra=extra)
    print_summary(summary["subsets"], title=f"{judge.name} on {dataset_dir.name}/{cfg.split} ({mode})")
    print(f"predictions, metrics.json, report.md and plots: {out_dir}")
    return summary
