"""Merge a run's adapter into its base model: `python -m hakim.cli.export RUN_DIR OUT_DIR [--dtype bfloat16]`."""

from __future__ import annotations

import argparse

from hakim.eval.export import export_merged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    arguments = parser.parse_args(argv)
    print(f"merged model written to {export_merged(arguments.run_dir, arguments.out_dir, arguments.dtype)}")


if __name__ == "__main__":
    main()
