"""Reading training checkpoints safely, and choosing the one a resumed run continues from."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch

from hakim.errors import HakimError

log = logging.getLogger(__name__)


class CheckpointError(HakimError, ValueError):
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
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused: not a Hakim checkpoint (it holds objects other than tensors and plain "
            f"values: tampered, or written by another program): {_unpickler_complaint(error)}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        if not _written_by_torch_save(path):
            raise CheckpointError(
                f"{path}: refused: not a Hakim checkpoint (not a file torch.save writes: a plain "
                "pickle, or another format)"
            ) from None
        raise CheckpointError(
            f"{path}: unreadable (truncated or corrupt): {str(error).splitlines()[0][:200]}"
        ) from None


def _written_by_torch_save(path: Path) -> bool:
    """torch.save writes a zip archive; one cut short while being written still starts like one."""
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def checkpoint_step(path: str | Path) -> int:
    """The optimizer step a training checkpoint was saved at; any other file is refused."""
    checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint, dict) or not {"global_step", "state_dict"} <= checkpoint.keys():
        raise CheckpointError(
            f"{path}: refused: not a Hakim checkpoint (no global_step and state_dict, which every "
            "training checkpoint holds)"
        )
    return int(checkpoint["global_step"])


def given_checkpoint(ckpt_path: str | Path) -> tuple[Path, int]:
    """The checkpoint `ckpt_path=` names and its step, checked here so that a file that is not one is refused in a
    line that says what to give instead (Lightning would show torch's advice to load it with weights_only=False)."""
    try:
        return Path(ckpt_path), checkpoint_step(ckpt_path)
    except CheckpointError as error:
        raise CheckpointError(f"ckpt_path={error}; give a .ckpt file from a Hakim run's checkpoints/ folder") from None


def newest_checkpoint(directory: Path) -> tuple[Path, int]:
    """The checkpoint with the highest optimizer step in `directory` and that step, skipping (with a
    one-line warning each) files that cannot be read. Of two at the same step the later-written wins:
    it was saved after that step's validation."""
    readable = []
    for path in sorted(Path(directory).glob("*.ckpt")):
        try:
            step = checkpoint_step(path)
        except CheckpointError as error:
            log.warning("skipping checkpoint %s", error)
            continue
        readable.append((step, path.stat().st_mtime_ns, path))
    if not readable:
        raise FileNotFoundError(f"{directory}: no readable checkpoint to continue from")
    step, _, path = max(readable)
    return path, step
