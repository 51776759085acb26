"""Train a Hakim judge: `python train.py experiment=v3` (see conf/train.yaml)."""

import sys

import hydra
from omegaconf import DictConfig

from hakim.cli.errors import one_line_errors
from hakim.cli.overrides import accept_plus_for_declared_groups
from hakim.train.fit import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return one_line_errors(train)(cfg)


if __name__ == "__main__":
    sys.argv = accept_plus_for_declared_groups(sys.argv, ("experiment", "hparams_search", "debug"))
    main()
