"""Prepare a judge dataset: `python prepare_data.py dataset=...` (see conf/prepare_data.yaml)."""

import logging

import hydra
from omegaconf import DictConfig

from hakim.cli.errors import one_line_errors
from hakim.data.budget import BudgetExceeded
from hakim.data.files import SourceError
from hakim.data.perturb.settings import AugmentError
from hakim.data.prepare import prepare
from hakim.data.records import BadRowError
from hakim.data.teacher.settings import TeacherError


@hydra.main(version_base="1.3", config_path="conf", config_name="prepare_data")
def main(cfg: DictConfig) -> None:
    one_line_errors(run)(cfg)


def run(cfg: DictConfig) -> None:
    try:
        prepare(cfg)
    except (BudgetExceeded, SourceError, BadRowError, TeacherError, AugmentError) as failure:
        # Each message names the source, file:line or setting to fix; a traceback would only bury it.
        for line in str(failure).splitlines():
            logging.getLogger("prepare_data").error(line)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
