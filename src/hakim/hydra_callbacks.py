"""Hydra callbacks: write a failed job's traceback into its own log, so a sweep's failures stay readable."""

from __future__ import annotations

import logging

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("hakim.job")


class LogJobFailure(Callback):
    """Hydra keeps a job's exception in memory and, in a multirun, re-raises only the first one after the
    batch; the job's `train.log` would never say why it failed. This logs the traceback there."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs) -> None:
        if job_return.status != JobStatus.FAILED:
            return
        error = job_return._return_value
        log.error("job failed: %s", config.hydra.runtime.output_dir,
                  exc_info=(type(error), error, error.__traceback__))
