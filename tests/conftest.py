"""Shared fixtures: one workspace per session holding the tiny random Mistral and the prepared sample."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")


def compose_config(name: str, workspace: Path, output_dir: Path, overrides: list[str] = ()):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name=name,
            overrides=[f"paths.root_dir={workspace}", f"paths.output_dir={output_dir}", *overrides],
        )


def _entry_point(script: str, workspace: Path, overrides) -> dict:
    return {
        "args": [sys.executable, str(ROOT / script), *overrides],
        "cwd": workspace,
        "env": {**os.environ, "HAKIM_ROOT": str(workspace), "PYTHONUNBUFFERED": "1"},
    }


def run_entry_point(script: str, workspace: Path, *overrides: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run train.py / evaluate.py / prepare_data.py as a user would, inside the test workspace."""
    result = subprocess.run(
        **_entry_point(script, workspace, overrides), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{script} {' '.join(overrides)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result


def start_entry_point(script: str, workspace: Path, *overrides: str, log) -> subprocess.Popen:
    """The same, left running (to be killed, say), its output written to the open file `log`."""
    return subprocess.Popen(**_entry_point(script, workspace, overrides), stdout=log, stderr=subprocess.STDOUT)


class RunsACommand:
    """What a tampered checkpoint or cache holds: unpickling it would run `touch <marker>`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hakim_workspace")


@pytest.fixture(scope="session")
def tiny_model_dir(workspace) -> Path:
    from hakim.models.tiny_mistral import build_tiny_mistral

    return build_tiny_mistral(workspace / ".cache" / "hakim" / "models" / "tiny_mistral")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from hakim.models.loading import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="session")
def marker_dir(tiny_tokenizer, tmp_path_factory) -> Path:
    """An exported judge whose P(1) is known: high exactly when its prompt names Kinabalu (tests/marker_model.py)."""
    from marker_model import save_marker_reader

    return save_marker_reader(tiny_tokenizer, tmp_path_factory.mktemp("marker_reader"))


@pytest.fixture(scope="session")
def sample_dataset(workspace, tmp_path_factory) -> Path:
    """The bundled sample prepared with the default prepare_data config."""
    from hakim.data.prepare import prepare

    cfg = compose_config("prepare_data", workspace, tmp_path_factory.mktemp("prepare_run"))
    prepare(cfg)
    return workspace / "data" / "sample"


@pytest.fixture
def train_config(workspace, tiny_model_dir, sample_dataset, tmp_path):
    def make(*overrides: str):
        return compose_config("train", workspace, tmp_path / "run", ["data.max_length=256", *overrides])

    return make


@pytest.fixture(scope="session")
def tiny_run(workspace, tiny_model_dir, sample_dataset, tmp_path_factory) -> Path:
    """A short real training run of the tiny 4-bit model (a run directory with an adapter)."""
    from hakim.train.fit import train

    run_dir = tmp_path_factory.mktemp("tiny_run")
    cfg = compose_config(
        "train",
        workspace,
        run_dir,
        ["data.max_length=256", "trainer.max_steps=4", "lora.r=4", "optim.optimizer.lr=1e-2"],
    )
    train(cfg)
    return run_dir


MISTRAL_TOKENIZER = ROOT / ".cache" / "hakim" / "mistral_7b_v0.1_tokenizer" / "tokenizer.model"


@pytest.fixture(scope="session")
def mistral_tokenizer_dir(tmp_path_factory) -> Path:
    """Mistral 7B v0.1's own SentencePiece tokenizer (32,000 pieces; the Malaysian Mistral judges use it), taken
    by `make install` from the PyPI wheel of mistral-common, in the shape of the hub's tokenizer files."""
    import json
    import shutil

    if not MISTRAL_TOKENIZER.is_file():
        pytest.skip(f"no {MISTRAL_TOKENIZER.relative_to(ROOT)}: `make install` takes it from mistral-common's wheel")
    target = tmp_path_factory.mktemp("mistral_tokenizer")
    shutil.copy(MISTRAL_TOKENIZER, target / "tokenizer.model")
    (target / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "LlamaTokenizer",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "add_bos_token": True,
                "add_eos_token": False,
                "legacy": False,
            }
        )
    )
    return target


def always_answer_one(judge) -> None:
    """Make `judge` generate `{"jawapan": 1}` (as its training target writes it) whatever it is asked: what its
    generate mode then parses and re-scores is the judge's own."""
    import torch

    from hakim.prompting.answer import target_parts

    before, _, after = target_parts(1, None, judge.style)

    def ids(text):
        return judge.tokenizer(text, add_special_tokens=False)["input_ids"]

    answer = torch.tensor(ids(before) + [judge.label_ids[1]] + ids(after) + [judge.tokenizer.eos_token_id])

    def write_a_clean_answer(input_ids, **_):
        return torch.cat([input_ids, answer.expand(input_ids.size(0), -1)], dim=1)

    judge.model.generate = write_a_clean_answer
