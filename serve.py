"""Serve a Hakim judge over HTTP: `python serve.py judge.run_dir=latest` (see conf/serve.yaml)."""

import hydra
from omegaconf import DictConfig

from hakim.cli.errors import one_line_errors
from hakim.serve.server import serve


@hydra.main(version_base="1.3", config_path="conf", config_name="serve")
def main(cfg: DictConfig) -> None:
    one_line_errors(serve)(cfg)


if __name__ == "__main__":
    main()
