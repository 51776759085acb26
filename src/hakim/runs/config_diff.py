"""`python -m hakim.cli.config_diff RUN_A RUN_B`: what differs between two run directories, group by group.

Groups: config (config.yaml, as dotted keys), data (data.json: dataset directory and version), environment
(environment.json: package versions, git commit and dirty flag, overrides, seed, ...; and git.diff).
Each run's own paths read `<run_dir>/…` (as RunDir stores them), so checkpoint and log paths match.
Exits 0 when every group is identical and 1 otherwise, like `diff`.
"""

from __future__ import annotations

import json
from pathlib import Path

from hakim.runs.run_dir import PLACEHOLDER, RunDir

ABSENT = "<absent>"


def flatten(value, prefix: str = "") -> dict[str, object]:
    """`{"lora": {"r": 4}}` -> `{"lora.r": 4}`; lists stay whole."""
    if isinstance(value, dict) and value:
        flat = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def load_run(run_dir: Path) -> dict[str, dict[str, object] | None]:
    """Each group as dotted keys, or None when the run lacks the file."""
    run = RunDir(Path(run_dir))
    if not run.path.is_dir():
        raise SystemExit(f"{run_dir}: not a run directory")
    groups = {
        "config": run.config_at(PLACEHOLDER) if run.config_path.exists() else None,
        "data": run.data_record() if run.data_path.exists() else None,
        "environment": run.environment(),
    }
    flat = {name: None if value is None else flatten(value) for name, value in groups.items()}
    if flat["environment"] is not None and run.git_diff_path.exists():
        flat["environment"]["git.diff"] = run.git_diff_path.read_text()
    return flat


def _show(value) -> str:
    return ABSENT if value is ABSENT else json.dumps(value, ensure_ascii=False)


def describe(key: str, a, b) -> str:
    if key == "git.diff":
        lines_a = len(a.splitlines()) if a is not ABSENT else 0
        lines_b = len(b.splitlines()) if b is not ABSENT else 0
        return f"git.diff: differs ({lines_a} vs {lines_b} lines)"
    if isinstance(a, list) and isinstance(b, list):
        removed = [item for item in a if item not in b]
        added = [item for item in b if item not in a]
        if removed or added:
            return f"{key}: only in A {_show(removed)}, only in B {_show(added)}"
        return f"{key}: same items, different order: {_show(a)} → {_show(b)}"
    return f"{key}: {_show(a)} → {_show(b)}"


def diff_group(a: dict | None, b: dict | None) -> list[str]:
    if a is None or b is None:
        return [] if a is b else [f"file missing in run {'A' if a is None else 'B'}"]
    keys = list(dict.fromkeys([*a, *b]))
    return [
        describe(key, a.get(key, ABSENT), b.get(key, ABSENT))
        for key in keys
        if a.get(key, ABSENT) != b.get(key, ABSENT)
    ]


def diff_runs(run_a: Path, run_b: Path) -> dict[str, list[str]]:
    """Per group, one line per difference (empty: identical)."""
    a, b = load_run(run_a), load_run(run_b)
    return {group: diff_group(a[group], b[group]) for group in a}


def render(run_a: Path, run_b: Path, differences: dict[str, list[str]]) -> str:
    lines = [f"A: {run_a}", f"B: {run_b}"]
    for group, found in differences.items():
        if not found:
            lines.append(f"{group}: identical")
            continue
        lines.append(f"{group}: {len(found)} difference{'s' if len(found) > 1 else ''}")
        lines += [f"  {line}" for line in found]
    return "\n".join(lines)
