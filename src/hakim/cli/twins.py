"""Link translated rows to their originals (see hakim.data.twins):
`python -m hakim.cli.twins --original A --translation B --out C`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hakim.data.twins import TWIN_COLUMN, link_files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", required=True, type=Path, help="JSONL rows in the original language")
    parser.add_argument("--translation", required=True, type=Path, help="JSONL rows of its translation")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help=f"translation rows that found their original, plus `{TWIN_COLUMN}`; the others go to OUT.unmatched.jsonl",
    )
    parser.add_argument("--min-score", type=float, default=12.0, help="least summed IDF of shared rare words")
    parser.add_argument("--min-ratio", type=float, default=2.0, help="least ratio of the best score to the runner-up's")
    args = parser.parse_args(argv)
    print(json.dumps(link_files(args.original, args.translation, args.out, args.min_score, args.min_ratio), indent=2))


if __name__ == "__main__":
    main()
