"""Merge a run's LoRA adapter into its base model and save a plain transformers model directory.

`python -m hakim.cli.export RUN_DIR OUT_DIR [--dtype bfloat16]`. The result loads with
`AutoModelForCausalLM.from_pretrained(OUT_DIR)` (and vLLM) without Hakim; `hakim_judge.json` beside
it records the prompt style and threshold so `Judge.from_pretrained(OUT_DIR)` judges the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import yaml

from hakim.eval.judge import (
    ADAPTER_DIR,
    JUDGE_FILE,
    read_thresholds,
    style_from_run_config,
)
from hakim.models.loading import (
    ModelSpec,
    load_adapter,
    load_base_model,
    load_tokenizer,
)
from hakim.prompting.prompt import LABEL_TOKENS


def export_merged(run_dir: str | Path, out_dir: str | Path, dtype: str = "bfloat16") -> Path:
    """The base is loaded unquantized in `dtype` (merging into 4-bit weights would lose the adapter)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    spec = replace(ModelSpec(**config["model"]), quantization=None, compute_dtype=dtype)
    merged = load_adapter(load_base_model(spec), run_dir / ADAPTER_DIR).merge_and_unload()
    merged.save_pretrained(out_dir)
    load_tokenizer(str(run_dir / ADAPTER_DIR)).save_pretrained(out_dir)
    threshold, source_thresholds = read_thresholds(run_dir)
    judge_info = {
        "style": asdict(style_from_run_config(config)),
        "threshold": threshold,
        "source_thresholds": source_thresholds,
        "max_length": config["data"]["max_length"],
        "label_tokens": LABEL_TOKENS,
        "exported_from": str(run_dir.resolve()),
        "dtype": dtype,
    }
    (out_dir / JUDGE_FILE).write_text(json.dumps(judge_info, indent=2) + "\n")
    return out_dir
