"""One error path: every error a user must fix is a HakimError, printed in one line by the entry point, with
no traceback anywhere; a bug prints the same kind of line and keeps its traceback in the run's log file."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from hakim.data.budget import BudgetExceeded
from hakim.data.files import SourceError
from hakim.data.perturb.settings import AugmentError
from hakim.data.records import BadRowError
from hakim.data.teacher.settings import TeacherError
from hakim.errors import HakimError
from hakim.eval.evaluation import NoVerdicts
from hakim.openai_api import EndpointError
from hakim.runs.run_dir import NotARunError
from hakim.train.checkpoints import CheckpointError
from hakim.train.judge_module import TrainingDiverged
from hakim.train.saved_config import UntrustedConfig


@pytest.mark.parametrize(
    "error",
    [
        SourceError,
        BadRowError,
        BudgetExceeded,
        TeacherError,
        EndpointError,
        NoVerdicts,
        NotARunError,
        CheckpointError,
        TrainingDiverged,
        UntrustedConfig,
        AugmentError,
    ],
)
def test_every_error_a_user_must_fix_is_a_hakim_error(error):
    assert issubclass(error, HakimError)


def _prepare(workspace, rows: str) -> tuple[subprocess.CompletedProcess, str]:
    (workspace / "rows.jsonl").write_text(rows)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "prepare_data.py"),
            "corpus=local_files",
            "corpus.sources.mine.path=rows.jsonl",
            "hydra.run.dir=runs/prepare/here",
        ],
        cwd=workspace,
        env={**os.environ, "HAKIM_ROOT": str(workspace)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, (workspace / "runs" / "prepare" / "here" / "prepare_data.log").read_text()


def test_a_bad_row_is_one_line_naming_file_row_and_field_and_no_traceback_anywhere(tmp_path):
    failed, logged = _prepare(tmp_path, json.dumps({"passage": "Langit biru.", "claim": "", "label": 1}) + "\n")
    assert failed.returncode == 1
    assert failed.stderr.strip().count("\n") == 0 and failed.stderr.startswith("error: BadRowError: rows.jsonl:1")
    assert "claim" in failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr + logged and "rows.jsonl:1" in logged
