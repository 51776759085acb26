"""A training run directory: the contract between training and everything after it.

Every file name of a run is defined here (RUN_FILES; conf/callbacks and conf/logger write checkpoints/ and
csv/ under the same names, which tests/test_run_dir.py checks), "is this a run" is checked here, and the config
is read here once into the objects its readers need (model spec, prompt style, max length, thresholds).
Paths inside the run are stored as `<run_dir>/...`, so a run directory can be moved or copied and
is read, evaluated and resumed where it now is.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from hakim.errors import HakimError
from hakim.models.loading import ModelSpec
from hakim.prompting.style import PromptStyle
from hakim.verdict import Thresholds

CONFIG = "config.yaml"
ENVIRONMENT = "environment.json"
GIT_DIFF = "git.diff"
DATA = "data.json"
CHECKPOINTS = "checkpoints"
METRICS = "csv/metrics.csv"
ADAPTER = "adapter"
SUMMARY = "run.json"
THRESHOLDS = "threshold.json"
# what a run directory holds: name → (written by, what it holds)
RUN_FILES = {
    CONFIG: ("training, at launch", "the resolved config (secrets redacted)"),
    ENVIRONMENT: ("training, at launch", "versions, git commit, command; `resumes`: one entry each"),
    GIT_DIFF: ("training, at launch", "uncommitted changes (untracked files listed)"),
    DATA: ("training, at launch", "dataset directory and version trained on"),
    CHECKPOINTS: ("training", "Lightning checkpoints (adapter + optimizer state)"),
    METRICS: ("training (CSV logger)", "every logged metric, continued across resumes"),
    ADAPTER: ("training, at the end", "the LoRA adapter and tokenizer"),
    SUMMARY: ("training, at the end", "status, metrics, data report, steps, tokens/s, memory"),
    THRESHOLDS: ("evaluate threshold=validation", "the cut(s) on P(1) chosen on validation"),
}
LATEST = "LATEST"  # in the runs directory: the path of the last run that finished training
PLACEHOLDER = "<run_dir>"


class NotARunError(HakimError, FileNotFoundError):
    """The directory is not a Hakim training run (or not one that finished training)."""


def _replace_in_strings(value, old: str, new: str):
    if isinstance(value, dict):
        return {key: _replace_in_strings(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_in_strings(item, old, new) for item in value]
    if isinstance(value, str) and (value == old or value.startswith(old + "/")):
        return new + value[len(old) :]
    return value


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def open(cls, path: str | Path, trained: bool = False) -> RunDir:
        """An existing run; `trained=True` also needs the adapter training writes at its end."""
        run = cls(Path(path))
        if not run.config_path.exists():
            raise NotARunError(f"{run.path} is not a Hakim run directory (no {CONFIG})")
        if trained and not run.adapter_dir.exists():
            raise NotARunError(f"{run.path} has no {ADAPTER}/: its training did not finish (see {SUMMARY})")
        return run

    @classmethod
    def resolve(cls, name: str | Path, runs_dir: str | Path, trained: bool = False) -> RunDir:
        """`latest` is the run recorded in runs_dir/LATEST by the last training run; anything else a path."""
        if str(name) == "latest":
            pointer = Path(runs_dir) / LATEST
            if not pointer.exists():
                raise NotARunError(f"no {pointer}: train a judge first or name a run directory")
            return cls.open(pointer.read_text().strip(), trained)
        return cls.open(name, trained)

    def mark_latest(self, runs_dir: str | Path) -> None:
        pointer = Path(runs_dir) / LATEST
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_text(str(self.path.resolve()) + "\n")

    @property
    def name(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / CONFIG)
    environment_path = property(lambda self: self.path / ENVIRONMENT)
    git_diff_path = property(lambda self: self.path / GIT_DIFF)
    data_path = property(lambda self: self.path / DATA)
    checkpoints_dir = property(lambda self: self.path / CHECKPOINTS)
    metrics_path = property(lambda self: self.path / METRICS)
    adapter_dir = property(lambda self: self.path / ADAPTER)
    summary_path = property(lambda self: self.path / SUMMARY)
    thresholds_path = property(lambda self: self.path / THRESHOLDS)

    # -- the config ---------------------------------------------------------------------------------
    def write_config(self, resolved: dict) -> None:
        """Store the resolved config with this run's own paths written relative to it."""
        self.path.mkdir(parents=True, exist_ok=True)
        relative = resolved
        for prefix in {str(self.path.resolve()), str(self.path)}:
            relative = _replace_in_strings(relative, prefix, PLACEHOLDER)
        self.config_path.write_text(yaml.safe_dump(relative, sort_keys=False, allow_unicode=True))
        self.__dict__.pop("config", None)

    @cached_property
    def config(self) -> dict:
        """The stored config, its `<run_dir>` paths pointing at where the run is now."""
        return self.config_at(self.path)

    def config_at(self, path: Path | str) -> dict:
        """The stored config with this run's own paths pointing into `path` (a rerun writes to a new run)."""
        stored = yaml.safe_load(self.config_path.read_text())
        if not isinstance(stored, dict):
            raise NotARunError(f"{self.config_path}: not a config (a YAML mapping)")
        written_at = (stored.get("paths") or {}).get("output_dir")
        if written_at and written_at != PLACEHOLDER:  # a run written before paths were stored relative to it
            stored = _replace_in_strings(stored, written_at, PLACEHOLDER)
        return _replace_in_strings(stored, PLACEHOLDER, str(path))

    def _section(self, key: str) -> dict:
        if key not in self.config:
            raise KeyError(f"{self.config_path} has no '{key}' section")
        return self.config[key]

    @property
    def model_spec(self) -> ModelSpec:
        return ModelSpec.from_dict(self._section("model"))

    @property
    def style(self) -> PromptStyle:
        # runs made before the `style` group stored it as `variant: {variant: v2, ...}`
        stored = self.config.get("style") or self._section("variant")
        return PromptStyle.from_dict(stored)

    @property
    def max_length(self) -> int:
        return int(self._section("data")["max_length"])

    @property
    def dataset_dir(self) -> str:
        return self._section("data")["dataset_dir"]

    # -- what training and evaluation write ---------------------------------------------------------
    def thresholds(self) -> Thresholds:
        """The stored cut(s); 0.5 and none per source where threshold=validation never ran."""
        if not self.thresholds_path.exists():
            return Thresholds()
        stored = json.loads(self.thresholds_path.read_text())
        return Thresholds(stored["threshold"], stored.get("by_source", {}))

    def write_thresholds(self, thresholds: Thresholds, **notes) -> dict:
        stored = {"threshold": thresholds.overall, "by_source": thresholds.by_source, **notes}
        self.thresholds_path.write_text(json.dumps(stored) + "\n")
        return stored

    def summary(self) -> dict | None:
        return json.loads(self.summary_path.read_text()) if self.summary_path.exists() else None

    def write_summary(self, summary: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.summary_path.write_text(json.dumps(summary, indent=2) + "\n")

    def data_record(self) -> dict:
        return json.loads(self.data_path.read_text())

    def write_data_record(self, dataset_dir: str, version: str) -> None:
        self.data_path.write_text(json.dumps({"dataset_dir": dataset_dir, "version": version}, indent=2) + "\n")

    def environment(self) -> dict | None:
        return json.loads(self.environment_path.read_text()) if self.environment_path.exists() else None

    def record_resume(self, record: dict) -> None:
        """Add a resume to environment.json's `resumes`; the original launch stays as it was."""
        environment = self.environment() or {}
        environment.setdefault("resumes", []).append({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record})
        self.environment_path.write_text(json.dumps(environment, indent=2) + "\n")

    def metrics_rows(self) -> list[dict[str, str]]:
        """Every row of csv/metrics.csv ([] when the run logged none)."""
        if not self.metrics_path.exists():
            return []
        with open(self.metrics_path, newline="") as handle:
            return list(csv.DictReader(handle))
