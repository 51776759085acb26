"""One row per job of a Hydra multirun: `python -m hakim.cli.sweep_summary SWEEP_DIR` (see hakim.runs.sweep_summary)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hakim.runs.sweep_summary import summarize


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hakim.cli.sweep_summary", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun directory: runs/<task>/multirun/<time>")
    parser.add_argument("--metric", help="sort by this metric (default: the jobs' optimized_metric)")
    parser.add_argument("--mode", choices=("max", "min"), help="default: min for losses, max otherwise")
    args = parser.parse_args(argv)
    jobs = summarize(args.sweep_dir, args.metric, None if args.mode is None else args.mode == "max")
    # non-zero when a job did not end `ok`, so a script or CI step running the sweep sees it; a job a search's
    # pruner stopped is no failure
    not_ok = [job for job in jobs if not job.passed]
    if not_ok:
        raise SystemExit(
            f"{len(not_ok)} of {len(jobs)} jobs did not end ok: "
            + ", ".join(f"{job.name} ({job.status})" for job in not_ok)
        )


if __name__ == "__main__":
    main()
