"""Evaluate a Hakim judge: `python evaluate.py run_dir=latest` (see conf/evaluate.yaml)."""

import hydra
from omegaconf import DictConfig

from hakim.evaluation import compare, evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    if cfg.compare:
        compare(cfg)
    else:
        evaluate(cfg)


if __name__ == "__main__":
    main()
