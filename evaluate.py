"""Evaluate a Hakim judge: `python evaluate.py judge.run_dir=latest` (see conf/evaluate.yaml)."""

import hydra
from omegaconf import DictConfig

from hakim.cli.errors import one_line_errors
from hakim.eval.comparison import compare
from hakim.eval.evaluation import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    one_line_errors(run)(cfg)


def run(cfg: DictConfig) -> None:
    if cfg.compare:
        compare(cfg)
        return
    evaluate(cfg)


if __name__ == "__main__":
    main()
