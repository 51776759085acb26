"""Prepare a judge dataset: `python prepare_data.py dataset=...` (see conf/prepare_data.yaml)."""

import hydra
from omegaconf import DictConfig

from hakim.data.prepare import prepare


@hydra.main(version_base="1.3", config_path="conf", config_name="prepare_data")
def main(cfg: DictConfig) -> None:
    prepare(cfg)


if __name__ == "__main__":
    main()
