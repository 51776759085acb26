"""The one place an entry point's errors are printed: one line for a single run, exit status 1.

A HakimError (hakim.errors) is the user's to fix and its message says how: the run's log file gets the
message. Any other exception is a bug: the log file gets its traceback, the terminal still one line.
"""

from __future__ import annotations

import functools
import logging
import os

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from hakim.errors import HakimError

log = logging.getLogger("hakim.job")


def _single_run() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.RUN


def _log_to_files_only(error: Exception) -> None:
    if isinstance(error, HakimError):
        record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (error,), None)
    else:
        record = log.makeRecord(
            log.name, logging.ERROR, __file__, 0, "run failed", (), (type(error), error, error.__traceback__)
        )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def one_line_errors(task):
    """Wrap a Hydra task so a failed single run prints `error: <Type>: <message>` once and exits with status 1,
    instead of Hydra's traceback. HYDRA_FULL_ERROR=1 raises as before; in a multirun the exception is left to
    Hydra, which records the job as failed and carries on (hydra_callbacks.LogJobFailure logs it)."""

    @functools.wraps(task)
    def run(cfg):
        try:
            return task(cfg)
        except Exception as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1" or not _single_run():
                raise
            _log_to_files_only(error)
            raise SystemExit(f"error: {type(error).__name__}: {error}") from None

    return run
