"""What a judge is, and how each kind in conf/judge/ is built: one table that evaluate.py and serve.py share.

A judge is anything that turns (passage, claim, task) rows into Verdicts: a training run (base + adapter),
an exported model, an OpenAI-compatible endpoint, a constant baseline. `AnyJudge` is the contract
evaluation relies on; `LocalJudge` adds what serving a model needs (its prompt style, and the passage as
it reads it). `JUDGES` maps each `judge.kind` to how it is built and how metrics.json names it, so a kind
added here is known to evaluation and serving alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from omegaconf import DictConfig, OmegaConf

from hakim.data.dataset_io import read_split
from hakim.eval.baselines import always_one_judge, majority_judge
from hakim.eval.judge import JUDGE_FILE, Judge
from hakim.eval.openai_judge import OpenAIJudge, OpenAISettings
from hakim.eval.rows import dataset_dir_for, read_rows_file
from hakim.prompting.chunks import Chunking
from hakim.prompting.style import PromptStyle
from hakim.runs.run_dir import RunDir
from hakim.verdict import Thresholds, Verdict


class AnyJudge(Protocol):
    """One Verdict per (passage, claim, task) item, in order; `thresholds` may be replaced (threshold=...)."""

    name: str
    thresholds: Thresholds
    modes: tuple[str, ...]  # the modes judge_batch accepts; a caller can refuse another before any work

    @property
    def default_mode(self) -> str: ...

    def judge_batch(self, items: list[tuple[str, str, str]], mode: str | None = None) -> list[Verdict]: ...


class LocalJudge(AnyJudge, Protocol):
    """A judge whose model runs here: what serve.py needs beyond AnyJudge."""

    style: PromptStyle

    def passage_as_read(self, passage: str, claim: str, source: str, mode: str | None = None) -> str: ...


@dataclass(frozen=True)
class JudgeKind:
    build: Callable[[DictConfig], tuple[AnyJudge, RunDir | None]]  # the judge and its training run, if any
    describe: Callable[[DictConfig, RunDir | None], dict]  # what names it in metrics.json (never a key)
    local: bool  # its model runs on this machine (serve.py serves only these)


def chunking_of(cfg: DictConfig) -> Chunking:
    """The `chunking` group (conf/chunking/): how a local judge reads a passage longer than it can take."""
    return Chunking.from_dict(OmegaConf.to_container(cfg.chunking, resolve=True) if "chunking" in cfg else None)


def _options(cfg: DictConfig) -> dict:
    return {"batch_size": cfg.batch_size, "max_new_tokens": cfg.max_new_tokens, "chunking": chunking_of(cfg)}


def _style(cfg: DictConfig) -> PromptStyle:
    return PromptStyle.from_dict(OmegaConf.to_container(cfg.style, resolve=True))


def _run(cfg: DictConfig):
    run = RunDir.resolve(cfg.judge.run_dir, cfg.paths.runs_dir, trained=True)
    return Judge.load(run, **_options(cfg)), run


def _model(cfg: DictConfig):
    settings = cfg.judge
    if (Path(settings.path) / JUDGE_FILE).exists():
        # an exported Hakim judge carries the prompt style, thresholds and max length it was trained with
        return Judge.from_pretrained(settings.path, quantization=settings.quantization, **_options(cfg)), None
    return Judge.from_pretrained(
        settings.path, _style(cfg), quantization=settings.quantization, max_length=settings.max_length, **_options(cfg)
    ), None


def _openai(cfg: DictConfig):
    endpoint = {key: value for key, value in OmegaConf.to_container(cfg.judge, resolve=True).items() if key != "kind"}
    return OpenAIJudge(OpenAISettings(**endpoint, max_output_tokens=cfg.max_new_tokens), _style(cfg)), None


def _majority_of_rows(cfg: DictConfig) -> bool:
    # No prepared dataset to take a reference split from: the evaluated rows' own majority class.
    return bool(cfg.get("rows")) and not cfg.get("dataset_dir")


def _majority(cfg: DictConfig):
    if _majority_of_rows(cfg):
        return majority_judge([r.label for r in read_rows_file(cfg)[0]], "rows"), None
    reference = read_split(dataset_dir_for(cfg, None), cfg.judge.baseline_split)
    return majority_judge([r.label for r in reference], cfg.judge.baseline_split), None


JUDGES: dict[str, JudgeKind] = {
    "run": JudgeKind(_run, lambda cfg, run: {"run_dir": str(run.path)}, local=True),
    "model": JudgeKind(_model, lambda cfg, run: {"model_path": cfg.judge.path}, local=True),
    "openai": JudgeKind(
        _openai,
        lambda cfg, run: {
            "openai_model": cfg.judge.model,
            "base_url": cfg.judge.base_url,
            "api_key_env": cfg.judge.api_key_env,
        },
        local=False,
    ),
    "majority": JudgeKind(
        _majority,
        lambda cfg, run: {"baseline_split": "rows" if _majority_of_rows(cfg) else cfg.judge.baseline_split},
        local=False,
    ),
    "always_one": JudgeKind(lambda cfg: (always_one_judge(), None), lambda cfg, run: {}, local=False),
}


def judge_kind(cfg: DictConfig) -> JudgeKind:
    if cfg.judge.kind not in JUDGES:
        raise ValueError(f"judge.kind must be one of {tuple(JUDGES)}, got {cfg.judge.kind!r}")
    return JUDGES[cfg.judge.kind]


def load_judge(cfg: DictConfig) -> tuple[AnyJudge, RunDir | None]:
    """The judge the `judge` group names, and its training run (None without one)."""
    kind = judge_kind(cfg)
    if chunking_of(cfg).enabled and not kind.local:
        # Chunks are measured in the judge's own tokens; an endpoint's model and a baseline have none here.
        instead = (
            "chunk on the server it calls instead (serve.py chunking=sentences), or set chunking=truncate"
            if cfg.judge.kind == "openai"
            else "it never reads the passage; set chunking=truncate"
        )
        raise ValueError(
            f"chunking.chunk_tokens is for a judge whose model runs here (judge=run or judge=model), "
            f"not judge={cfg.judge.kind}: {instead}"
        )
    return kind.build(cfg)


def describe_judge(cfg: DictConfig, run: RunDir | None) -> dict:
    """What identifies the judge in metrics.json and report.md; never the API key, only its variable."""
    return judge_kind(cfg).describe(cfg, run)
