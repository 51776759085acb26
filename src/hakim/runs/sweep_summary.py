"""`python -m hakim.cli.sweep_summary SWEEP_DIR`: one row per job of a Hydra multirun, best first, failures included.

Prints a table and writes `sweep_summary.md` and `sweep_summary.csv` into SWEEP_DIR. Columns: the overrides
that vary across jobs (the constant ones are listed once above the table), the best validation metrics of
each job, training tokens/s, wall time, and status: `ok` (run.json written, unless it records another
status), `pruned` (a search's pruner stopped it early, at the step shown: not a failure), `diverged`,
`failed` (with the exception that ended the job, from its log), or `unfinished` (neither: still running, or
killed without a traceback, e.g. out of memory or past its time limit). Jobs that ended ok come first, best
first, then the pruned ones, then the rest. Exits with status 1 when any job ended neither `ok` nor `pruned`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hakim.eval.report import wide_console
from hakim.runs.run_dir import RunDir

# metric -> whether higher is better
METRICS = {"val/balanced_accuracy": True, "val/auroc": True, "val/f1": True, "val/loss": False}
DEFAULT_METRIC = "val/balanced_accuracy"
MISSING = "—"
PRUNED = "pruned"


@dataclass
class Job:
    name: str
    directory: Path
    overrides: dict[str, str]
    status: str
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    tokens_per_second: float | None = None
    wall_seconds: float | None = None
    step: int | None = None  # the optimizer step it ended at (a pruned job: where the pruner stopped it)

    @property
    def passed(self) -> bool:
        """Ended as a run should: trained to its end, or stopped early by a search's pruner."""
        return self.status in ("ok", PRUNED)


def parse_overrides(lines: list[str]) -> dict[str, str]:
    """`["lora.r=4", "+experiment=v2"]` -> `{"lora.r": "4", "experiment": "v2"}`."""
    parsed = {}
    for line in lines:
        key, _, value = line.partition("=")
        parsed[key.lstrip("+")] = value
    return parsed


def last_exception(log_text: str) -> str | None:
    """The `Type: message` line that ends the last traceback in a log."""
    lines = log_text.splitlines()
    starts = [index for index, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return None
    for line in lines[starts[-1] + 1 :]:
        if line and not line[0].isspace():
            return line.strip()
    return None


def read_metrics(run: RunDir) -> list[dict[str, float]]:
    return [{key: float(value) for key, value in row.items() if value not in ("", None)} for row in run.metrics_rows()]


def best_metrics(rows: list[dict[str, float]], final: dict[str, float], names: dict[str, bool]) -> dict[str, float]:
    """Best value per metric over every validation in metrics.csv; run.json's final value where the CSV has none."""
    best = {}
    for name, higher_is_better in names.items():
        values = [row[name] for row in rows if name in row]
        if values:
            best[name] = max(values) if higher_is_better else min(values)
        elif name in final:
            best[name] = final[name]
    return best


def tokens_per_second(summary: dict, rows: list[dict[str, float]]) -> float | None:
    if summary.get("tokens_per_second") is not None:
        return summary["tokens_per_second"]
    # older runs: metrics.csv holds one step's train/tokens every log_every_n_steps; scale its mean to all steps
    logged = [row["train/tokens"] for row in rows if "train/tokens" in row]
    if not logged or not summary.get("wall_seconds") or not summary.get("global_step"):
        return None
    return round(sum(logged) / len(logged) * summary["global_step"] / summary["wall_seconds"], 1)


def read_job(directory: Path, names: dict[str, bool]) -> Job:
    overrides = parse_overrides(yaml.safe_load((directory / ".hydra" / "overrides.yaml").read_text()) or [])
    run = RunDir(directory)
    rows = read_metrics(run)
    summary = run.summary()
    if summary is not None:
        return Job(
            directory.name,
            directory,
            overrides,
            summary.get("status", "ok"),
            error=summary.get("error"),
            metrics=best_metrics(rows, summary.get("metrics", {}), names),
            tokens_per_second=tokens_per_second(summary, rows),
            wall_seconds=summary.get("wall_seconds"),
            step=summary.get("global_step"),
        )
    errors = [last_exception(log.read_text(errors="replace")) for log in sorted(directory.glob("*.log"))]
    error = next((line for line in errors if line), None)
    return Job(
        directory.name,
        directory,
        overrides,
        "failed" if error else "unfinished",
        error=error or "no run.json and no traceback in the job log",
        metrics=best_metrics(rows, {}, names),
    )


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    directories = [path.parent.parent for path in sweep_dir.glob("*/.hydra/overrides.yaml")]
    return sorted(
        directories, key=lambda path: (not path.name.isdigit(), int(path.name) if path.name.isdigit() else 0, path.name)
    )


def optimized_metric(job_dirs: list[Path]) -> str:
    for directory in job_dirs:
        config = directory / ".hydra" / "config.yaml"
        if config.exists():
            return (yaml.safe_load(config.read_text()) or {}).get("optimized_metric") or DEFAULT_METRIC
    return DEFAULT_METRIC


def split_overrides(jobs: list[Job]) -> tuple[dict[str, str], list[str]]:
    """(overrides every job shares, keys of those that vary), keys in first-seen order."""
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    constant = {}
    for key in keys:
        values = {job.overrides.get(key) for job in jobs}
        if len(values) == 1 and None not in values:
            constant[key] = values.pop()
    return constant, [key for key in keys if key not in constant]


def rank(jobs: list[Job], metric: str, higher_is_better: bool) -> list[Job]:
    """Jobs that ended ok, then pruned ones, then the rest (failed, diverged, unfinished); within each, those with
    the metric best first, then those without by job number."""

    def best_first(group: list[Job]) -> list[Job]:
        scored = sorted(
            (job for job in group if metric in job.metrics),
            key=lambda job: job.metrics[metric],
            reverse=higher_is_better,
        )
        return scored + [job for job in group if metric not in job.metrics]

    return (
        best_first([job for job in jobs if job.status == "ok"])
        + best_first([job for job in jobs if job.status == PRUNED])
        + best_first([job for job in jobs if not job.passed])
    )


def _number(value: float | None, digits: int) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def table_rows(jobs: list[Job], varying: list[str], names: list[str]) -> tuple[list[str], list[list[str]]]:
    header = ["job", "status", *varying, *names, "tokens/s", "wall s"]
    rows = [
        [
            job.name,
            job.status,
            *(job.overrides.get(key, MISSING) for key in varying),
            *(_number(job.metrics.get(name), 4) for name in names),
            _number(job.tokens_per_second, 1),
            _number(job.wall_seconds, 1),
        ]
        for job in jobs
    ]
    return header, rows


def error_lines(jobs: list[Job]) -> list[str]:
    return [f"job {job.name} {job.status}: {job.error}" for job in jobs if job.error and not job.passed]


def pruned_line(jobs: list[Job]) -> str | None:
    """Pruned jobs apart from failed ones: the search stopped them early, by design."""
    pruned = [
        f"job {job.name} at step {MISSING if job.step is None else job.step}" for job in jobs if job.status == PRUNED
    ]
    return "pruned by the search (not failures): " + ", ".join(pruned) if pruned else None


def markdown(
    sweep_dir: Path,
    constant: dict[str, str],
    metric: str,
    header: list[str],
    rows: list[list[str]],
    errors: list[str],
    pruned: str | None,
) -> str:
    lines = [
        f"# Sweep {sweep_dir}",
        "",
        f"Sorted by `{metric}`, best first (ended ok, then pruned, then the rest). Shared overrides: "
        + (", ".join(f"`{key}={value}`" for key, value in constant.items()) or "none"),
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    lines += ["", *(f"- {line}" for line in errors)] if errors else []
    lines += ["", f"- {pruned}"] if pruned else []
    return "\n".join(lines) + "\n"


def write_csv(path: Path, jobs: list[Job], names: list[str]) -> None:
    keys = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["job", *keys, *names, "tokens_per_second", "wall_seconds", "status", "error", "run_dir"])
        for job in jobs:
            writer.writerow(
                [
                    job.name,
                    *(job.overrides.get(key, "") for key in keys),
                    *(job.metrics.get(name, "") for name in names),
                    "" if job.tokens_per_second is None else job.tokens_per_second,
                    "" if job.wall_seconds is None else job.wall_seconds,
                    job.status,
                    job.error or "",
                    job.directory,
                ]
            )


def summarize(
    sweep_dir: Path, metric: str | None = None, higher_is_better: bool | None = None, console: Console | None = None
) -> list[Job]:
    """Read every job of the sweep, print the table, write sweep_summary.md/.csv; returns the ranked jobs."""
    sweep_dir = Path(sweep_dir)
    job_dirs = find_job_dirs(sweep_dir)
    if not job_dirs:
        raise SystemExit(
            f"{sweep_dir}: no Hydra jobs here (no */.hydra/overrides.yaml); "
            "pass a multirun directory such as runs/train/multirun/<time>"
        )
    metric = metric or optimized_metric(job_dirs)
    if higher_is_better is None:
        higher_is_better = METRICS.get(metric, "loss" not in metric)
    names = {**METRICS, metric: higher_is_better}
    jobs = rank([read_job(directory, names) for directory in job_dirs], metric, higher_is_better)
    constant, varying = split_overrides(jobs)
    header, rows = table_rows(jobs, varying, list(names))

    console = console or wide_console()
    statuses = list(dict.fromkeys(["ok", *(job.status for job in jobs)]))
    counts = ", ".join(f"{sum(job.status == status for job in jobs)} {status}" for status in statuses)
    console.print(
        f"[bold]{sweep_dir}[/bold]: {len(jobs)} jobs, {counts}, sorted by {metric} "
        f"({'max' if higher_is_better else 'min'})"
    )
    console.print(
        "shared overrides: " + (" ".join(f"{key}={value}" for key, value in constant.items()) or "none"),
        markup=False,
        highlight=False,
    )
    table = Table(caption="val/* columns: the best value of any validation in the run")
    for name in header:
        table.add_column(escape(name.removeprefix("val/")), overflow="fold")
    for row, job in zip(rows, jobs, strict=True):
        table.add_row(*map(escape, row), style="yellow" if job.status == PRUNED else None if job.passed else "red")
    console.print(table)
    for line in error_lines(jobs):
        console.print(line, style="red", markup=False, highlight=False)
    if pruned_line(jobs):
        console.print(pruned_line(jobs), style="yellow", markup=False, highlight=False)

    (sweep_dir / "sweep_summary.md").write_text(
        markdown(sweep_dir, constant, metric, header, rows, error_lines(jobs), pruned_line(jobs))
    )
    write_csv(sweep_dir / "sweep_summary.csv", jobs, list(names))
    return jobs
