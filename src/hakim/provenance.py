"""What a run directory records so two runs can be told apart: config, versions, commit, diff."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("hakim", "torch", "transformers", "peft", "bitsandbytes", "lightning", "hydra-core", "omegaconf",
            "datasets", "torchmetrics", "openai", "wandb", "tokenizers", "accelerate")
SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def _git(*args: str, cwd: Path) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def git_state(cwd: Path | None = None) -> dict:
    cwd = Path(cwd or Path.cwd())
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    diff = _git("diff", "HEAD", cwd=cwd) if commit else None
    return {"commit": commit.strip() if commit else None, "dirty": bool(diff), "diff": diff or ""}


def redact(value):
    """Drop any config value whose key looks like a secret, recursively."""
    if isinstance(value, dict):
        return {
            key: ("<redacted>" if any(marker in str(key).lower() for marker in SECRET_MARKERS) and not str(key).endswith("_env") else redact(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def write_provenance(run_dir: Path, resolved_config: dict, overrides: list[str], seed: int, extra: dict | None = None) -> None:
    import yaml

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(redact(resolved_config), sort_keys=False, allow_unicode=True))
    git = git_state()
    (run_dir / "git.diff").write_text(git.pop("diff"))
    environment = {
        "versions": package_versions(),
        "git": git,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "overrides": overrides,
        "seed": seed,
        "platform": platform.platform(),
        **(extra or {}),
    }
    (run_dir / "environment.json").write_text(json.dumps(environment, indent=2) + "\n")
