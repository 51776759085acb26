"""Evaluation throughput: Hakim's score mode against per-example generation + parsing.

    python bench/eval_throughput.py --model smollm2_135m --examples 12   # ~2 min
    python bench/eval_throughput.py --model mistral_7b_random --tokenizer DIR --examples 64 --batch-size 16 \
        --max-new-tokens 8                                               # a CUDA GPU; ~2 min on an H100

Same model (4-bit nf4 base + a LoRA adapter, as a trained judge is loaded), same rows, same prompt:
- hakim score: Judge.judge_batch(mode="score"): batches of similar length, one forward pass each,
  P(1) from the two label-token logits at the verdict position. Never unparsed.
- per-example generate (how the original evaluated): one row at a time, the rendered prompt
  tokenized, model.generate (greedy, --max-new-tokens) of a JSON answer, then parsed: strictly with
  hakim.prompting.prompt.parse_answer, and leniently (a 0/1 after "jawapan" anywhere in the text).

Both run in one process on the one loaded model, alternating (score, generate, score, generate)
after one untimed warm-up call each. An untrained adapter answers like the base model, so the
unparsed counts of the generate side say how often the model, not the parser, fails.

`mistral_7b_random` is the GPU shape of the question: Mistral-7B's configuration with random nf4
weights (built as bench/gpu_qlora.py builds it, no download) and the vocabulary of the tokenizer in
--tokenizer (any Hugging Face tokenizer directory, e.g. SmolLM2's from the Hakim model cache), in
bf16. Random weights never write a parseable answer or stop early, so on this model only the speeds
mean something: give --max-new-tokens the length of the shortest valid answer (8) to keep the
generate side's time a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time

import common

RANDOM_7B = "mistral_7b_random"
LENIENT = re.compile(r'jawapan"?\s*:\s*"?([01])')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny_mistral", choices=sorted([*common.MODELS, RANDOM_7B]))
    parser.add_argument(
        "--tokenizer",
        default=None,
        help=f"tokenizer directory for {RANDOM_7B} (default: SmolLM2's in the Hakim model cache)",
    )
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8, help="score-mode batch size")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument(
        "--max-new-tokens", type=int, default=16, help='budget for the generated answer ({"jawapan": 1} is ~8)'
    )
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads (see common.run_worker)")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    return parser.parse_args(argv)


def generate_one_by_one(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    import torch

    answers = []
    with torch.no_grad():
        for prompt in prompts:
            encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=not tokenizer.chat_template)
            encoded = encoded.to(model.device)
            output = model.generate(
                **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
            answers.append(tokenizer.decode(output[0, encoded["input_ids"].size(1) :], skip_special_tokens=True))
    return answers


def random_judge_model(args, scale: str = "7b", device: str = "cuda"):
    """Mistral-7B's shape (or gpu_qlora's tiny one), random nf4 weights, the tokenizer's vocabulary, an untrained
    LoRA."""
    import gpu_qlora
    import torch

    from hakim.models.loading import LoraSpec, ModelSpec, add_lora, load_tokenizer, resolve_model_path

    tokenizer = load_tokenizer(args.tokenizer or resolve_model_path(common.model_spec("smollm2_135m")))
    config = gpu_qlora.model_config(scale)
    config.vocab_size = len(tokenizer)
    model = gpu_qlora.build_quantized_model(config, torch.device(device), torch.bfloat16, seed=args.seed)
    model.config.use_cache = True  # generation decodes with the KV cache, as it would in practice
    # no k-bit training preparation (it upcasts norms and embeddings to fp32 for training): a judge only reads
    spec = ModelSpec(name=RANDOM_7B, source="local", quantization=None, gradient_checkpointing=False)
    return tokenizer, add_lora(
        model, spec, LoraSpec(r=args.lora_r, alpha=16, dropout=0.0, target_modules="all-linear", fused_dropout=False)
    ).eval()


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import logging
    import warnings

    import torch

    from hakim.eval.judge import Judge
    from hakim.models.loading import LoraSpec, add_lora, load_base_model, load_tokenizer, resolve_model_path
    from hakim.prompting.prompt import render_prompt
    from hakim.prompting.style import PromptStyle
    from hakim.verdict import parse_answer

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.model == RANDOM_7B:
        if not torch.cuda.is_available():
            print(f"eval_throughput: {RANDOM_7B} needs a CUDA GPU; none here.")
            return
        tokenizer, model = random_judge_model(args)
    else:
        spec = common.model_spec(args.model)
        path = resolve_model_path(spec)
        tokenizer = load_tokenizer(path)
        model = add_lora(
            load_base_model(spec, path),
            spec,
            LoraSpec(r=args.lora_r, alpha=16, dropout=0.0, target_modules="all-linear", fused_dropout=False),
        )
    style = PromptStyle("v2", "ms")
    judge = Judge(model, tokenizer, style, max_length=args.max_length, batch_size=args.batch_size)
    rows, origin = common.load_rows(2 * args.examples + 16, args.seed, args.synthetic)
    rows = common.fit_rows(rows, tokenizer, style, args.max_length - args.max_new_tokens, args.examples)
    items = [(row["passage"], row["claim"], row["source"]) for row in rows]
    prompts = [render_prompt(tokenizer, *item, style) for item in items]

    judge.judge_batch(items[:1], mode="score")  # warm-up: first calls repack the 4-bit weights for CPU
    generate_one_by_one(judge.model, tokenizer, prompts[:1], 2)
    timings = {"score": [], "generate": []}
    verdicts, answers = None, None
    print(
        f"# {common.machine()}; model {args.model}; {len(items)} examples; score batch {args.batch_size}; "
        f"generate max_new_tokens {args.max_new_tokens}; {args.threads} thread(s); data {origin}"
    )
    for repeat in range(args.repeats):
        start = time.perf_counter()
        verdicts = judge.judge_batch(items, mode="score")
        timings["score"].append(time.perf_counter() - start)
        start = time.perf_counter()
        answers = generate_one_by_one(judge.model, tokenizer, prompts, args.max_new_tokens)
        timings["generate"].append(time.perf_counter() - start)
        print(
            f"  run {repeat + 1}: score {timings['score'][-1]:.2f}s, generate {timings['generate'][-1]:.2f}s",
            flush=True,
        )

    strict = sum(parse_answer(answer).label is None for answer in answers)
    lenient = sum(LENIENT.search(answer) is None for answer in answers)
    rates = {side: len(items) / common.median(seconds) for side, seconds in timings.items()}
    summary = {
        "score": {"examples_per_s": rates["score"], "unparsed": sum(v.label is None for v in verdicts)},
        "generate": {
            "examples_per_s": rates["generate"],
            "unparsed_strict": strict,
            "unparsed_lenient": lenient,
            "sample_answers": answers[:3],
        },
        "ratio_examples_per_s": rates["score"] / rates["generate"],
    }
    print(f"# sample generated answers: {[a[:60] for a in answers[:3]]}")
    print(
        common.table(
            ["method (median)", "examples/s", "unparsed (strict)", "unparsed (lenient)"],
            [
                [
                    "hakim score",
                    f"{rates['score']:.2f}",
                    f"{summary['score']['unparsed']}/{len(items)}",
                    f"{summary['score']['unparsed']}/{len(items)}",
                ],
                [
                    "per-example generate",
                    f"{rates['generate']:.2f}",
                    f"{strict}/{len(items)}",
                    f"{lenient}/{len(items)}",
                ],
                ["score/generate", f"{summary['ratio_examples_per_s']:.1f}x", "", ""],
            ],
        )
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "timings": timings, **summary}, handle, indent=1)


if __name__ == "__main__":
    main()
