"""Prepare a judge dataset: `python prepare_data.py corpus=...` (see conf/prepare_data.yaml)."""

import hydra
from omegaconf import DictConfig

from hakim.cli.errors import one_line_errors
from hakim.data.prepare import prepare


@hydra.main(version_base="1.3", config_path="conf", config_name="prepare_data")
def main(cfg: DictConfig) -> None:
    one_line_errors(prepare)(cfg)


if __name__ == "__main__":
    main()
