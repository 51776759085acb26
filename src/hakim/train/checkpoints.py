"""Reading training checkpoints safely, and choosing the one a resumed run continues from."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, or holding more than tensors and plain values."""


def _unpickler_complaint(error: Exception) -> str:
    """The line of torch's refusal that names what was refused (the rest advises loading it anyway)."""
    lines = [line.strip() for line in str(error).splitlines() if "unsupported" in line.lower()]
    return (lines[0] if lines else type(error).__name__)[:200]


def load_checkpoint(path: str | Path) -> dict:
    """A Lightning checkpoint's contents, loaded without running code from the file.

    `weights_only=True` unpickles tensors and plain Python values only; anything else (a tampered file,
    a checkpoint from another program) is refused rather than executed. `mmap` reads lazily, so looking
    at a large checkpoint's step costs little.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path}: refused, it holds objects other than tensors and plain values "
                              f"(tampered, or not written by Hakim): {_unpickler_complaint(error)}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable (truncated or corrupt): {str(error).splitlines()[0][:200]}") from None


def newest_checkpoint(directory: Path) -> tuple[Path, int]:
    """The checkpoint with the highest optimizer step in `directory` and that step, skipping (with a
    one-line warning each) files that cannot be read. Of two at the same step the later-written wins:
    it was saved after that step's validation."""
    readable = []
    for path in sorted(Path(directory).glob("*.ckpt")):
        try:
            step = int(load_checkpoint(path)["global_step"])
        except (CheckpointError, KeyError) as error:
            log.warning("skipping checkpoint %s", error if isinstance(error, CheckpointError) else f"{path}: no global_step")
            continue
        readable.append((step, path.stat().st_mtime_ns, path))
    if not readable:
        raise FileNotFoundError(f"{directory}: no readable checkpoint to continue from")
    step, _, path = max(readable)
    return path, step
