"""Judge a JSONL file: `python -m hakim.cli.judge RUN_OR_MODEL_DIR INPUT.jsonl OUTPUT.jsonl`.

Each input line needs `passage` and `claim` (or `question` / `summary`), optionally `source`
(boolq | fib | anything) and `id`; each output line is the input plus label, probability, and
reasoning / parse_error where the judge generated text; with --chunk-tokens, the chunk that decided.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hakim.data.records import BadRowError, text_problem
from hakim.data.sources import iter_jsonl
from hakim.eval.judge import Judge
from hakim.file_writes import jsonl, write_atomically
from hakim.prompting.chunks import Chunking

CLAIM_COLUMNS = ("claim", "question", "summary")


def read_items(path: Path) -> list[dict]:
    rows = []
    for location, row in iter_jsonl(path):
        problem = text_problem(row.get("passage"))
        if problem:
            raise BadRowError(location, "passage", problem)
        claim = next((row[c] for c in CLAIM_COLUMNS if text_problem(row.get(c)) is None), None)
        if claim is None:
            raise BadRowError(location, "claim", f"one of {CLAIM_COLUMNS} is needed")
        rows.append({**row, "_claim": claim})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Judge every row of a JSONL file with a Hakim judge.")
    parser.add_argument("judge", help="a training run directory or an exported (merged) model directory")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--mode", choices=["score", "generate"], default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--chunk-tokens",
        type=int,
        default=None,
        help="read long passages in chunks of whole sentences, at most N tokens each (P(1): the maximum)",
    )
    parser.add_argument(
        "--split-claim",
        action="store_true",
        help="with --chunk-tokens: every claim sentence must be supported by some chunk (P(1): the minimum)",
    )
    arguments = parser.parse_args(argv)
    if arguments.split_claim and arguments.chunk_tokens is None:
        parser.error("--split-claim judges each claim sentence against the passage's chunks: give --chunk-tokens too")
    if arguments.chunk_tokens is not None and arguments.chunk_tokens < 1:
        parser.error(f"--chunk-tokens must be at least 1, got {arguments.chunk_tokens}")

    try:
        rows = read_items(arguments.input)  # before the model loads: a bad input fails in a second, not minutes
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    chunking = Chunking(arguments.chunk_tokens, arguments.split_claim)
    judge = Judge.open(arguments.judge, batch_size=arguments.batch_size, chunking=chunking)
    verdicts = judge.judge_batch(
        [(r["passage"], r["_claim"], r.get("source", "default")) for r in rows], mode=arguments.mode
    )
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    for row, verdict in zip(rows, verdicts, strict=True):
        row.pop("_claim")
        row.update(
            label=verdict.label,
            probability=verdict.probability,
            reasoning=verdict.reasoning,
            parse_error=verdict.parse_error,
        )
        if chunking.enabled:
            row.update(
                chunk=verdict.chunk,
                chunk_count=verdict.chunk_count,
                chunk_text=verdict.chunk_text,
                claim_sentence=verdict.claim_sentence,
            )
    write_atomically(arguments.output, jsonl(rows))
    unparsed = sum(1 for v in verdicts if v.label is None)
    print(f"{len(rows)} rows judged ({unparsed} unparsed) → {arguments.output}")


if __name__ == "__main__":
    main()
