"""Where an evaluation's rows come from: a prepared dataset (the run's own, or `dataset_dir=`), or a
user's file (`rows=PATH`, read like a local source of prepare_data.py)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hakim.data.dataset_io import resolve_dataset_dir
from hakim.data.records import JudgeRecord
from hakim.data.sources import SourceSpec, read_source
from hakim.runs.run_dir import RunDir


def dataset_dir_for(cfg: DictConfig, run: RunDir | None) -> Path:
    dataset_dir = cfg.dataset_dir or (run.dataset_dir if run else None)
    if not dataset_dir:
        raise ValueError("set dataset_dir=PATH: the judge has no training run to take it from")
    return resolve_dataset_dir(dataset_dir)


def read_rows_file(cfg: DictConfig) -> tuple[list[JudgeRecord], list[dict]]:
    """The records and rejects of `rows=PATH`, read like a local source of prepare_data.py (same messages)."""
    columns = OmegaConf.to_container(cfg.columns, resolve=True)
    result = read_source(SourceSpec(name="rows", path=str(cfg.rows), **columns), on_bad_row=cfg.on_bad_row)
    return result.records, result.rejects
