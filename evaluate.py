"""Evaluate a Hakim judge: `python evaluate.py judge.run_dir=latest` (see conf/evaluate.yaml)."""

import logging

import hydra
from omegaconf import DictConfig

from hakim.cli.errors import one_line_errors
from hakim.data.files import SourceError
from hakim.data.records import BadRowError
from hakim.eval.evaluation import compare, evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    one_line_errors(run)(cfg)


def run(cfg: DictConfig) -> None:
    if cfg.compare:
        compare(cfg)
        return
    try:
        evaluate(cfg)
    except (SourceError, BadRowError) as problem:
        # A file given as rows=PATH is the user's: say which line and field to fix, not where the code was.
        logging.getLogger("evaluate").error(str(problem))
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
