"""Hydra callbacks: keep secrets out of the files Hydra writes, and write a failed job's traceback into
its own log, so a sweep's failures stay readable."""

from __future__ import annotations

import logging
import sys

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from hakim.provenance import literal_secrets

log = logging.getLogger("hakim.job")


def override_values(overrides: list[str]) -> list[dict]:
    """`{key: value}` for each value the command line's overrides set, parsed as Hydra parses them: quotes
    removed, `key={a: 1}` a dict, and each choice of a sweep `key=a,b` on its own."""
    found = []
    for override in OverridesParser.create().parse_overrides(overrides):
        value = override.value()
        choices = value.list if isinstance(value, ChoiceSweep) else [value]
        found += [{override.key_or_group: choice} for choice in choices]
    return found


class RefuseLiteralSecrets(Callback):
    """Hydra copies the composed config and the command line into `.hydra/` (and W&B records the command
    line) before any Hakim code runs; a secret written in either would end up on disk. Refused here, before
    the run directory exists: secrets come from environment variables (`*_env` keys, `${oc.env:NAME}`)."""

    def _check(self, config: DictConfig) -> None:
        # unresolved: reading an element of the ListConfig would resolve `${oc.env:NAME}` into the secret itself
        overrides = OmegaConf.to_container(config.hydra.overrides.task)
        composed = {
            key: value for key, value in OmegaConf.to_container(config, resolve=False).items() if key != "hydra"
        }
        keys = [key for override in override_values(overrides) for key in literal_secrets(override)]
        keys += literal_secrets(composed)
        if keys:
            # SystemExit, not an exception: Hydra turns a callback's exceptions into warnings and carries on
            raise SystemExit(
                f"error: {', '.join(sorted(set(keys)))}: a secret may not be written on the command line or "
                "in a config file (Hydra saves both); put it in an environment variable and name that "
                "variable (e.g. teacher.api_key_env=OPENAI_API_KEY, or key: ${oc.env:NAME}), and give "
                "URLs without a user name or password"
            )

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config)


def _pruned(error: BaseException) -> bool:
    # only a search imports optuna, and only a search's trials are pruned: other entry points never import it here
    optuna = sys.modules.get("optuna")
    return optuna is not None and isinstance(error, optuna.TrialPruned)


class LogJobFailure(Callback):
    """Hydra keeps a job's exception in memory and, in a multirun, re-raises only the first one after the
    batch; the job's `train.log` would never say why it failed. This logs the traceback there (a trial a
    search's pruner stopped gets one line: it did not fail)."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs) -> None:
        if job_return.status != JobStatus.FAILED:
            return
        error = job_return._return_value
        if _pruned(error):
            log.info("job %s: %s", config.hydra.runtime.output_dir, error)
            return
        log.error("job failed: %s", config.hydra.runtime.output_dir, exc_info=(type(error), error, error.__traceback__))
