"""The layout holds what it promises: evaluation and everything that reads a run stand apart from training."""

import ast
import subprocess
import sys

from conftest import ROOT

PACKAGE = ROOT / "src" / "hakim"
# stages that must not need Lightning or the training code: a judge is evaluated, exported, probed,
# compared and served on a machine that never trains; a search drives training only through Hydra jobs
APART_FROM_TRAINING = ["eval", "runs", "prompting", "verdict.py", "batching.py", "models", "serve", "search"]


def imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # function-level imports too
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_evaluation_and_run_readers_import_neither_lightning_nor_the_training_code():
    offenders = []
    for part in APART_FROM_TRAINING:
        files = [PACKAGE / part] if part.endswith(".py") else sorted((PACKAGE / part).rglob("*.py"))
        for path in files:
            for module in imported_modules(path):
                if module.split(".")[0] in ("lightning", "pytorch_lightning") or module.startswith("hakim.train"):
                    offenders.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not offenders, offenders


def test_evaluate_runs_without_importing_lightning(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        '{"passage": "Langit biru.", "claim": "Langit biru", "label": 1, "language": "ms"}\n'
        '{"passage": "Langit biru.", "claim": "Langit hijau", "label": 0, "language": "ms"}\n'
    )
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['evaluate.py', 'judge=always_one', 'rows={rows}', 'hydra.run.dir={tmp_path / 'out'}']\n"
        f"runpy.run_path({str(ROOT / 'evaluate.py')!r}, run_name='__main__')\n"
        "loaded = any(m == 'lightning' or m.startswith('lightning.') for m in sys.modules)\n"
        "print('LIGHTNING' if loaded else 'NO-LIGHTNING')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("NO-LIGHTNING")
    assert (tmp_path / "out" / "metrics.json").exists()


def test_the_server_loads_neither_lightning_nor_the_training_code():
    script = (
        "import sys\nimport hakim.serve.server\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')"
        " or m.startswith('hakim.train')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
