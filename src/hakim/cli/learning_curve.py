"""Plot validation metrics against examples seen: `python -m hakim.cli.learning_curve RUN_DIR ... --out curve.png`."""

from __future__ import annotations

import argparse
from pathlib import Path

from hakim.runs.learning_curve import plot_learning_curves


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--metric", default="val/balanced_accuracy")
    arguments = parser.parse_args(argv)
    print(f"learning curve written to {plot_learning_curves(arguments.run_dirs, arguments.out, arguments.metric)}")


if __name__ == "__main__":
    main()
