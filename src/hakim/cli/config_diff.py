"""What differs between two runs: `python -m hakim.cli.config_diff RUN_A RUN_B` (exit 1 when anything does)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hakim.runs.config_diff import diff_runs, render


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hakim.cli.config_diff", description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    args = parser.parse_args(argv)
    differences = diff_runs(args.run_a, args.run_b)
    print(render(args.run_a, args.run_b, differences))
    sys.exit(1 if any(differences.values()) else 0)


if __name__ == "__main__":
    main()
