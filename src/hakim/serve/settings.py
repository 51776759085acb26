"""What a served judge promises its callers: where it listens, who may call it, how it batches and what it refuses.

Built from conf/serve.yaml, where every field has its one default and its comment, and checked up front,
every problem named at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    host: str
    port: int
    api_key_env: str | None  # the variable holding the key callers must send as `Authorization: Bearer ...`
    served_name: str | None  # the model id of /v1/models and chat completions; None: the judge's name
    max_batch: int  # rows per model call, gathered across requests
    max_wait_ms: float  # how long the oldest queued row may wait for others to join its batch
    max_queue: int  # rows waiting for the model; past this a request is answered 503 + Retry-After
    retry_after_s: int  # what a 503 tells the caller to wait
    max_body_mb: float  # larger request bodies are refused (413) before they are read in full
    max_items: int  # items per /v1/judge request
    max_file_rows: int  # rows per uploaded file
    graceful_shutdown_s: float | None  # on SIGTERM, how long requests in flight may take; None: as long as they need
    threads: int | None = None  # torch's CPU threads for the model calls; None: torch's default (every core)

    def __post_init__(self):
        problems = [
            f"{name} must be at least 1, got {getattr(self, name)}"
            for name in ("max_batch", "max_queue", "max_items", "max_file_rows", "retry_after_s")
            if getattr(self, name) < 1
        ]
        problems += [
            f"{name} must be positive, got {getattr(self, name)}"
            for name in ("max_body_mb",)
            if getattr(self, name) <= 0
        ]
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            problems.append(f"threads must be a whole number of at least 1 (or null), got {self.threads!r}")
        if self.max_wait_ms < 0:
            problems.append(f"max_wait_ms must be 0 or more, got {self.max_wait_ms}")
        if self.max_queue < self.max_items:
            problems.append(
                f"max_queue ({self.max_queue}) must hold at least one full request (max_items={self.max_items})"
            )
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be 0-65535, got {self.port}")
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            problems.append(
                f"api_key_env names {self.api_key_env}, which is not set or empty: export it, or drop api_key_env"
            )
        if problems:
            raise ValueError("serve settings: " + "; ".join(problems))

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 2**20)

    def api_key(self) -> str | None:
        """Read when the app is built, never stored in a config or a log."""
        return os.environ[self.api_key_env] if self.api_key_env else None
