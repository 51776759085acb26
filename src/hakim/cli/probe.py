"""A linear probe on a frozen base model (see hakim.eval.probe):
`python -m hakim.cli.probe --dataset-dir DIR --model conf/model/X.yaml --out DIR`."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch
import yaml

from hakim.eval.probe import INPUTS, print_result, run_probe
from hakim.models.loading import ModelSpec
from hakim.prompting.chunks import Chunking
from hakim.prompting.style import CLAIM_POSITIONS, INSTRUCTION_LANGUAGES, PromptStyle
from hakim.runs.run_dir import RunDir


def base_style(path: Path | None) -> PromptStyle:
    if path is None:
        return PromptStyle()
    if path.is_dir():
        return RunDir.open(path).style
    return PromptStyle.from_dict(yaml.safe_load(path.read_text()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset-dir", required=True, type=Path, help="a prepared dataset (train, validation, eval splits)"
    )
    parser.add_argument("--model", required=True, type=Path, help="a model config, e.g. conf/model/smollm2_135m.yaml")
    parser.add_argument("--cache-dir", default=".cache/hakim/models", help="where converted/built models are cached")
    parser.add_argument("--quantization", default="none", choices=("none", "nf4"), help="frozen model precision")
    parser.add_argument(
        "--compute-dtype",
        default="auto",
        choices=("auto", "bfloat16", "float32"),
        help="auto: bfloat16 on a GPU, float32 on CPU; bfloat16 is ~2x faster on CPUs with AVX-512 BF16 "
        "and ~100x slower on CPUs without it",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory (features cache + probe.json)")
    parser.add_argument("--input", default="full", choices=INPUTS)
    parser.add_argument(
        "--style",
        type=Path,
        default=None,
        help="the prompt style to probe with: a run directory (the style it was trained with) or a style "
        "YAML such as conf/style/v2.yaml (default: the v2 style); the three options below change it",
    )
    parser.add_argument("--instruction-language", choices=INSTRUCTION_LANGUAGES)
    parser.add_argument("--claim-position", choices=CLAIM_POSITIONS)
    parser.add_argument(
        "--passage-sentences",
        type=int,
        help="keep only the N passage sentences closest to the claim (default: the style's; v2: whole passages)",
    )
    parser.add_argument("--max-length", type=int, default=768)
    parser.add_argument(
        "--max-train-rows", type=int, default=None, help="a seeded sample of N train rows across sources (default: all)"
    )
    parser.add_argument("--batch-size", type=int, default=1, help="rows per forward pass (1 is fastest on CPU)")
    parser.add_argument(
        "--chunk-tokens",
        type=int,
        default=None,
        help="score validation and evaluation rows as a chunked judge reads them: chunks of whole sentences, "
        "at most N tokens each, P(1) the maximum over them (default: passages cut at --max-length)",
    )
    parser.add_argument(
        "--split-claim",
        action="store_true",
        help="with --chunk-tokens: each claim sentence must be supported by some chunk (P(1): the minimum)",
    )
    args = parser.parse_args(argv)
    if args.split_claim and args.chunk_tokens is None:
        parser.error("--split-claim judges each claim sentence against the passage's chunks: give --chunk-tokens too")
    if args.chunk_tokens is not None and args.chunk_tokens < 1:
        parser.error(f"--chunk-tokens must be at least 1, got {args.chunk_tokens}")
    config = yaml.safe_load(args.model.read_text())
    config["cache_dir"] = args.cache_dir
    config["quantization"] = None if args.quantization == "none" else args.quantization
    config["compute_dtype"] = args.compute_dtype
    style = replace(
        base_style(args.style),
        **{
            key: value
            for key, value in (
                ("instruction_language", args.instruction_language),
                ("claim_position", args.claim_position),
                ("passage_sentences", args.passage_sentences),
            )
            if value is not None
        },
    )
    torch.manual_seed(0)
    result = run_probe(
        ModelSpec.from_dict(config),
        args.dataset_dir,
        args.out,
        style,
        args.max_length,
        args.input,
        args.max_train_rows,
        batch_size=args.batch_size,
        chunking=Chunking(args.chunk_tokens, args.split_claim),
    )
    print_result(result)


if __name__ == "__main__":
    main()
