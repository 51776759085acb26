"""Merge a run's LoRA adapter into its base model and save a plain transformers model directory.

`python -m hakim.cli.export RUN_DIR OUT_DIR [--dtype bfloat16]`. The result loads with
`AutoModelForCausalLM.from_pretrained(OUT_DIR)` (and vLLM) without Hakim; `hakim_judge.json` beside
it records the prompt style and threshold so `Judge.from_pretrained(OUT_DIR)` judges the same way.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from hakim.eval.judge import JUDGE_FILE
from hakim.models.loading import load_adapter, load_base_model, load_tokenizer
from hakim.prompting.answer import LABEL_TOKENS
from hakim.runs.run_dir import RunDir


def export_merged(run_dir: str | Path, out_dir: str | Path, dtype: str = "bfloat16") -> Path:
    """The base is loaded unquantized in `dtype` (merging into 4-bit weights would lose the adapter)."""
    run, out_dir = RunDir.open(run_dir, trained=True), Path(out_dir)
    spec = replace(run.model_spec, quantization=None, compute_dtype=dtype)
    merged = load_adapter(load_base_model(spec), run.adapter_dir).merge_and_unload()
    merged.save_pretrained(out_dir)
    load_tokenizer(str(run.adapter_dir)).save_pretrained(out_dir)
    thresholds = run.thresholds()
    judge_info = {
        "style": run.style.to_dict(),
        "threshold": thresholds.overall,
        "source_thresholds": thresholds.by_source,
        "max_length": run.max_length,
        "label_tokens": LABEL_TOKENS,
        "exported_from": str(run.path.resolve()),
        "dtype": dtype,
    }
    (out_dir / JUDGE_FILE).write_text(json.dumps(judge_info, indent=2) + "\n")
    return out_dir
