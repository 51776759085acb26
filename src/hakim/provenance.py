"""What a run directory records so two runs can be told apart: config, versions, commit, diff."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "hakim",
    "torch",
    "transformers",
    "peft",
    "bitsandbytes",
    "lightning",
    "hydra-core",
    "omegaconf",
    "datasets",
    "torchmetrics",
    "openai",
    "wandb",
    "tokenizers",
    "accelerate",
)
# a secret-looking key holds one of these words (so `hf_token` and a header's `Authorization` do,
# `max_new_tokens` does not); `*_env` keys name the environment variable that holds the secret instead
SECRET_KEY = re.compile(
    r"(^|[_\-.])(api_?key|key|token|secret|password|passwd|credentials?|authorization|cookie)($|[_\-.])"
)
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# what an API key has and a variable's name does not: 16 or more letters and digits mixed, between underscores
# (`hf_AbC…123`); `sk-…` keys already fail VARIABLE_NAME
KEY_LIKE_PART = re.compile(r"(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9]{16,}")
# `scheme://user:password@host/…`: whatever stands before the @ is a credential
URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^/?#\s]*@")


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
        chunks.append(
            f"diff --git a/{name} b/{name}\nnew file (untracked)\n--- /dev/null\n+++ b/{name}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines)
        )
    return "".join(chunks)


def git_state(cwd: Path | None = None) -> dict:
    cwd = Path(cwd or Path.cwd())
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    diff = _git("diff", "HEAD", cwd=cwd) if commit else None
    untracked = (_git("ls-files", "--others", "--exclude-standard", cwd=cwd) or "").splitlines() if commit else []
    diff = (diff or "") + _untracked_diff(cwd, untracked)
    return {
        "commit": commit.strip() if commit else None,
        "dirty": bool(diff or untracked),
        "untracked": untracked,
        "diff": diff,
    }


def is_secret_key(key: str) -> bool:
    """A config key whose value must never be written."""
    key = str(key).lower()
    return bool(SECRET_KEY.search(key)) and not key.endswith("_env")


def names_a_variable(value) -> bool:
    """Whether a `*_env` value is an environment variable's name, not the key itself pasted in."""
    text = str(value)
    return bool(VARIABLE_NAME.fullmatch(text)) and not any(KEY_LIKE_PART.fullmatch(part) for part in text.split("_"))


def has_url_credentials(value) -> bool:
    """Whether a value holds a URL with a user name or password in it (`http://user:sk-…@host/v1`)."""
    return isinstance(value, str) and bool(URL_CREDENTIALS.search(value))


def _writes_a_secret(key, value) -> bool:
    if value in (None, "", "<redacted>") or str(value).startswith("${"):
        return False  # nothing, or read from the environment when the run starts
    if str(key).lower().endswith("_env"):
        return not names_a_variable(value)
    return is_secret_key(key) or has_url_credentials(value)


def literal_secrets(config, prefix: str = "") -> list[str]:
    """Dotted keys of `config` (unresolved) that hold a secret written out, rather than `${oc.env:...}`: a
    secret-looking key set to a value, a `*_env` key set to the key instead of its variable's name, or a URL
    with a user name or password."""
    found = []
    items = config.items() if isinstance(config, dict) else enumerate(config) if isinstance(config, list) else ()
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (dict, list)):
            found += literal_secrets(value, name + ".")
        elif _writes_a_secret(key, value):
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
