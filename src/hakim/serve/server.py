"""`serve(cfg)`: load the judge conf/serve.yaml names and answer HTTP on host:port until SIGTERM or Ctrl-C.

On SIGTERM the server stops accepting connections, finishes the requests in flight (their rows are still
judged) and exits with status 0. A judge that fails to load stops the server with that error.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import fields

import torch
import uvicorn
from omegaconf import DictConfig, OmegaConf

from hakim.eval.judges import JUDGES, judge_kind
from hakim.serve.app import create_app
from hakim.serve.settings import ServeSettings
from hakim.verdict import Thresholds

log = logging.getLogger("hakim.serve")


def settings_from(cfg: DictConfig) -> ServeSettings:
    values = OmegaConf.to_container(cfg, resolve=True)
    return ServeSettings(**{field.name: values[field.name] for field in fields(ServeSettings)})


def judge_loader(cfg: DictConfig):
    kind = judge_kind(cfg)
    if not kind.local:
        local = [name for name, entry in JUDGES.items() if entry.local]
        raise ValueError(
            f"serve.py serves a judge whose model runs here (judge={' or judge='.join(local)}), "
            f"not judge={cfg.judge.kind}"
        )

    def load():
        judge, _ = kind.build(cfg)
        if cfg.threshold is not None:
            judge.thresholds = Thresholds(float(cfg.threshold))
        return judge

    return load


def _drained(signum, frame) -> None:
    """Where uvicorn hands back the signal it stopped on once it has drained: the shutdown is done, so the
    process ends normally (status 0) instead of being killed by that signal."""


def serve(cfg: DictConfig) -> None:
    settings = settings_from(cfg)  # before anything loads: a bad setting fails in a second
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    load = judge_loader(cfg)
    failures: list[BaseException] = []

    def stop_on_failure(error: BaseException) -> None:
        failures.append(error)
        server.should_exit = True

    app = create_app(load, settings, on_load_failure=stop_on_failure)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            timeout_graceful_shutdown=settings.graceful_shutdown_s,
        )
    )
    auth = (
        f"callers must send Authorization: Bearer ${settings.api_key_env}" if settings.api_key_env else "no key asked"
    )
    log.info(
        "serving judge=%s on http://%s:%d (page /, API docs /docs); %s; %d torch threads",
        cfg.judge.kind,
        settings.host,
        settings.port,
        auth,
        torch.get_num_threads(),
    )
    previous = {sig: signal.signal(sig, _drained) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failures:
        raise failures[0]
