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


def is_secret_key(key: str) -> bool:
    """A config key whose value must never be written (`*_env` keys name an environment variable instead)."""
    key = str(key).lower()
    return any(marker in key for marker in SECRET_MARKERS) and not key.endswith("_env")


def redact(value):
    """Drop any config value whose key looks like a secret, recursively."""
    if isinstance(value, dict):
        return {key: ("<redacted>" if is_secret_key(key) else redact(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def redact_overrides(arguments: list[str]) -> list[str]:
    """Command-line `key=value` overrides with the value of any secret-looking key replaced."""
    redacted = []
    for argument in arguments:
        key, separator, _ = argument.partition("=")
        redacted.append(f"{key}=<redacted>" if separator and is_secret_key(key.rsplit(".", 1)[-1]) else argument)
    return redacted


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
        "command": [Path(sys.argv[0]).name, *redact_overrides(sys.argv[1:])],
        "overrides": redact_overrides(overrides),
        "seed": seed,
        "platform": platform.platform(),
        **(extra or {}),
    }
    (run_dir / "environment.json").write_text(json.dumps(environment, indent=2) + "\n")
