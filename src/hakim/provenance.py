"""What a run directory records so two runs can be told apart: config, versions, commit, diff."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("hakim", "torch", "transformers", "peft", "bitsandbytes", "lightning", "hydra-core", "omegaconf",
            "datasets", "torchmetrics", "openai", "wandb", "tokenizers", "accelerate")
# a secret-looking key holds one of these words (so `hf_token` does, `max_new_tokens` does not); `*_env`
# keys name the environment variable that holds the secret instead
SECRET_KEY = re.compile(r"(^|[_\-.])(api_?key|key|token|secret|password|passwd|credentials?)($|[_\-.])")


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


# Untracked files copied into git.diff: code and config up to this size. Others (data, a .env file of
# secrets) are only listed in environment.json.
UNTRACKED_DIFF_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".json", ".cfg")
UNTRACKED_DIFF_LIMIT = 256 * 1024


def _untracked_diff(cwd: Path, paths: list[str]) -> str:
    """Untracked files as `git diff` shows new files: a config file the run reads but nobody committed."""
    chunks = []
    for name in paths:
        path = cwd / name
        if path.suffix not in UNTRACKED_DIFF_SUFFIXES or path.stat().st_size > UNTRACKED_DIFF_LIMIT:
            continue
        try:
            lines = path.read_text().splitlines()
        except UnicodeDecodeError:
            continue
        chunks.append(f"diff --git a/{name} b/{name}\nnew file (untracked)\n--- /dev/null\n+++ b/{name}\n"
                      f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines))
    return "".join(chunks)


def git_state(cwd: Path | None = None) -> dict:
    cwd = Path(cwd or Path.cwd())
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    diff = _git("diff", "HEAD", cwd=cwd) if commit else None
    untracked = (_git("ls-files", "--others", "--exclude-standard", cwd=cwd) or "").splitlines() if commit else []
    diff = (diff or "") + _untracked_diff(cwd, untracked)
    return {"commit": commit.strip() if commit else None, "dirty": bool(diff or untracked), "untracked": untracked,
            "diff": diff}


def is_secret_key(key: str) -> bool:
    """A config key whose value must never be written."""
    key = str(key).lower()
    return bool(SECRET_KEY.search(key)) and not key.endswith("_env")


def literal_secrets(config, prefix: str = "") -> list[str]:
    """Dotted keys of `config` (unresolved) that hold a secret written out, rather than `${oc.env:...}`."""
    found = []
    items = config.items() if isinstance(config, dict) else enumerate(config) if isinstance(config, list) else ()
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (dict, list)):
            found += literal_secrets(value, name + ".")
        elif is_secret_key(key) and value not in (None, "", "<redacted>") and not str(value).startswith("${"):
            found.append(name)
    return found


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


def write_provenance(run, resolved_config: dict, overrides: list[str], seed: int, extra: dict | None = None) -> None:
    """The launch of a run (a hakim.runs.run_dir.RunDir): its config, environment.json and git.diff."""
    run.write_config(redact(resolved_config))
    git = git_state()
    run.git_diff_path.write_text(git.pop("diff"))
    environment = {
        "versions": package_versions(),
        "git": git,
        "command": [Path(sys.argv[0]).name, *redact_overrides(sys.argv[1:])],
        "overrides": redact_overrides(overrides),
        "seed": seed,
        "platform": platform.platform(),
        **(extra or {}),
    }
    run.environment_path.write_text(json.dumps(environment, indent=2) + "\n")
