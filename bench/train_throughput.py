"""Training throughput and memory: Hakim's SFT loop against trl's SFTTrainer, same model and examples.

    python bench/train_throughput.py --model smollm2_135m --examples 16 --steps 4   # ~7 min on 2 busy cores

Both sides get the same 4-bit nf4 base with the same LoRA (built by hakim.models.loading.load_base_model +
add_lora from the same seed; Hakim applies the LoRA dropout inside lora_A as train.py does
(hakim.models.lora_dropout), trl gets peft's dropout module as it comes), fp32 compute, AdamW at a constant
learning rate, clipping at 1.0, the
same micro-batch and no accumulation, and the same prompt/completion texts (hakim.prompting.prompt
render_prompt + target_text; passages pre-cut by characters so that neither side truncates).

- hakim: JudgeModule.training_step (completion_cross_entropy) under a plain Lightning Trainer, as
  train.py runs it, fed by LengthGroupedBatchSampler + collate (tokenized once, completion-only).
- trl: SFTTrainer on a prompt/completion dataset with completion_only_loss=True, its default random
  sampler (or --trl-sampling group_by_length) and its collator. trl casts QLoRA adapters to bf16;
  we cast them back to fp32 so both sides compute in the same precision.

Each side runs in its own interpreter (its peak memory is its own), alternating hakim, trl, hakim,
trl; the first --warmup steps are not timed. Reported: real (non-pad) tokens/s, padding share of
the tokens fed to the model, peak RSS of the process and during training, and hakim/trl ratios.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time

import common

SIDES = ("hakim", "trl")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny_mistral", choices=sorted(common.MODELS))
    parser.add_argument("--examples", type=int, default=32, help="rows drawn (seeded) from the data")
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per side, --warmup of them untimed")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4, help="micro-batch = effective batch (no accumulation)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument(
        "--gradient-checkpointing", action="store_true", help="on both sides (off in Hakim's CPU configs)"
    )
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument(
        "--no-fused-dropout",
        action="store_true",
        help="Hakim side with peft's own LoRA dropout (to see what hakim.models.lora_dropout gives)",
    )
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--repeats", type=int, default=2, help="runs per side, interleaved")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per side (see common.run_worker)")
    parser.add_argument("--trl-sampling", default="random", choices=["random", "group_by_length"])
    parser.add_argument("--synthetic", action="store_true", help="synthetic rows even when ../shared/data exists")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the medians and ratios here")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    return args


class Meter:
    """Real tokens, padded tokens, completion tokens and wall time of the steps after the warm-up."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.steps = 0
        self.start = None
        self.end = None
        self.real = self.padded = self.completion = 0
        self.losses = []
        self._pending = None

    def batch(self, attention_mask, labels):
        self._pending = (int(attention_mask.sum()), attention_mask.numel(), int((labels[:, 1:] != -100).sum()))

    def step_end(self, loss):
        self.steps += 1
        self.losses.append(float(loss))
        if self.steps == self.warmup:
            self.start = time.perf_counter()
        elif self.steps > self.warmup:
            self.end = time.perf_counter()
            real, padded, completion = self._pending
            self.real += real
            self.padded += padded
            self.completion += completion

    def result(self) -> dict:
        seconds = self.end - self.start
        return {
            "timed_steps": self.steps - self.warmup,
            "seconds": seconds,
            "real_tokens": self.real,
            "padded_tokens": self.padded,
            "completion_tokens": self.completion,
            "tokens_per_s": self.real / seconds,
            "pad_share": 1 - self.real / self.padded,
            "first_loss": self.losses[0],
            "last_loss": self.losses[-1],
        }


def _rows_and_style(args, tokenizer):
    from hakim.prompting.style import PromptStyle

    style = PromptStyle("v2", "ms")
    rows, origin = common.load_rows(2 * args.examples + 16, args.seed, args.synthetic)
    return common.fit_rows(rows, tokenizer, style, args.max_length, args.examples), style, origin


def run_hakim(args) -> dict:
    import lightning as L
    import torch
    from torch.utils.data import DataLoader

    from hakim.models.loading import LoraSpec
    from hakim.prompting.prompt import encode_example
    from hakim.train.datamodule import EncodedDataset, LengthGroupedBatchSampler, collate, encoded_item
    from hakim.train.judge_module import JudgeModule
    from hakim.verdict import label_token_ids

    spec = common.model_spec(args.model, gradient_checkpointing=args.gradient_checkpointing)
    torch.manual_seed(args.seed)
    lora = LoraSpec(
        args.lora_r, args.lora_alpha, args.lora_dropout, "all-linear", fused_dropout=not args.no_fused_dropout
    )
    module = JudgeModule(
        spec,
        lora,
        optimizer=functools.partial(torch.optim.AdamW, lr=args.lr, weight_decay=0.0),
        scheduler=None,
        lm_loss_weight=1.0,
        verdict_loss_weight=0.0,
        class_balanced=False,
        loss_chunk_size=2048,
    )
    tokenizer = module.tokenizer
    rows, style, origin = _rows_and_style(args, tokenizer)
    label_ids = label_token_ids(tokenizer)
    items = []
    for row in rows:  # what JudgeDataModule._encode_split does, without a prepared dataset on disk
        record = common.to_record(row)
        items.append(encoded_item(record, encode_example(tokenizer, record, style, args.max_length, label_ids)))
    dataset = EncodedDataset(items)
    loader = DataLoader(
        dataset,
        batch_sampler=LengthGroupedBatchSampler(dataset.lengths, args.batch_size, args.seed),
        collate_fn=functools.partial(collate, pad_id=tokenizer.pad_token_id),
    )
    meter = Meter(args.warmup)

    class MeterCallback(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            meter.batch(batch["attention_mask"], batch["labels"])

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            meter.step_end(outputs["loss"])

    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision="32-true",
        max_steps=args.steps,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[MeterCallback()],
    )
    rss_before = common.rss_mb()
    with common.PeakRss() as peak:
        trainer.fit(module, train_dataloaders=loader)
    return {
        **meter.result(),
        "rss_before_train_mb": rss_before,
        "train_peak_rss_mb": peak.peak,
        "data": origin,
        "mean_tokens_per_example": sum(dataset.lengths) / len(dataset),
    }


def run_trl(args) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from hakim.models.loading import LoraSpec, add_lora, load_base_model, load_tokenizer, resolve_model_path
    from hakim.prompting.answer import target_text
    from hakim.prompting.prompt import render_prompt

    spec = common.model_spec(args.model, gradient_checkpointing=args.gradient_checkpointing)
    path = resolve_model_path(spec)
    tokenizer = load_tokenizer(path)
    torch.manual_seed(args.seed)
    # trl users get peft's LoRA as it comes: dropout as its own module, mask and dropped input kept for backward
    lora = LoraSpec(args.lora_r, args.lora_alpha, args.lora_dropout, "all-linear", fused_dropout=False)
    model = add_lora(load_base_model(spec, path), spec, lora)
    rows, style, origin = _rows_and_style(args, tokenizer)
    dataset = Dataset.from_list(
        [
            {
                "prompt": render_prompt(tokenizer, row["passage"], row["claim"], row["source"], style),
                "completion": target_text(row["label"], None, style),
            }
            for row in rows
        ]
    )
    meter = Meter(args.warmup)

    class MeterCallback(TrainerCallback):
        def on_step_end(self, arguments, state, control, **kwargs):
            meter.step_end(meter.last_loss)

    class MeteredSFTTrainer(SFTTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            meter.batch(inputs["attention_mask"], inputs["labels"])
            loss = super().training_step(model, inputs, num_items_in_batch)
            meter.last_loss = loss.detach()
            return loss

    output_dir = tempfile.mkdtemp(prefix="bench_trl_")
    config = SFTConfig(
        output_dir=output_dir,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        max_steps=args.steps,
        learning_rate=args.lr,
        weight_decay=0.0,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_grad_norm=1.0,
        optim="adamw_torch",
        bf16=False,
        fp16=False,
        use_cpu=True,
        gradient_checkpointing=spec.gradient_checkpointing,
        completion_only_loss=True,
        max_length=args.max_length,
        train_sampling_strategy=args.trl_sampling,
        report_to="none",
        save_strategy="no",
        logging_steps=args.steps,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        disable_tqdm=True,
        seed=args.seed,
    )
    trainer = MeteredSFTTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=[MeterCallback()]
    )
    cast = [p for p in trainer.model.parameters() if p.requires_grad and p.dtype != torch.float32]
    for parameter in cast:  # trl's QLoRA bf16 adapters → fp32, the precision Hakim trains in on CPU
        parameter.data = parameter.data.float()
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    rss_before = common.rss_mb()
    with common.PeakRss() as peak:
        trainer.train()
    return {
        **meter.result(),
        "rss_before_train_mb": rss_before,
        "train_peak_rss_mb": peak.peak,
        "data": origin,
        "mean_tokens_per_example": sum(lengths) / len(lengths),
        "adapters_recast_to_fp32": len(cast),
        "examples_kept": len(lengths),
    }


def worker(args) -> None:
    import logging
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    result = run_hakim(args) if args.worker == "hakim" else run_trl(args)
    result["peak_rss_mb"] = common.maxrss_mb()
    print(json.dumps(result))


def summarize(runs: dict[str, list[dict]]) -> dict:
    keys = ("tokens_per_s", "pad_share", "peak_rss_mb", "train_peak_rss_mb", "rss_before_train_mb")
    medians = {side: {k: common.median([r[k] for r in runs[side]]) for k in keys} for side in SIDES}
    for side in SIDES:
        medians[side]["train_growth_mb"] = common.median(
            [r["train_peak_rss_mb"] - r["rss_before_train_mb"] for r in runs[side]]
        )
        medians[side]["mean_tokens_per_example"] = runs[side][0]["mean_tokens_per_example"]
    ratios = {
        k: medians["hakim"][k] / medians["trl"][k]
        for k in ("tokens_per_s", "peak_rss_mb", "train_peak_rss_mb", "train_growth_mb")
    }
    return {"medians": medians, "ratios": ratios}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("--json")]
    if args.json:
        passthrough = [a for a in passthrough if a != args.json]
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    print(
        f"# {common.machine()}; model {args.model}; {args.examples} examples, {args.steps} steps "
        f"({args.warmup} untimed), batch {args.batch_size}, max_length {args.max_length}, LoRA r={args.lora_r}, "
        f"{args.threads} thread(s); trl sampling {args.trl_sampling}"
    )
    for repeat in range(args.repeats):
        for side in SIDES:
            result = common.run_worker(
                common.BENCH_DIR / "train_throughput.py", [*passthrough, "--worker", side], args.threads
            )
            runs[side].append(result)
            print(
                f"  run {repeat + 1} {side:5s}: {result['tokens_per_s']:8.1f} tok/s, pad {result['pad_share']:.1%}, "
                f"peak {result['peak_rss_mb']:.0f} MiB (training {result['train_peak_rss_mb']:.0f}), "
                f"{result['timed_steps']} steps in {result['seconds']:.1f}s, loss {result['first_loss']:.3f}"
                f"→{result['last_loss']:.3f}",
                flush=True,
            )
    print(f"# data: {runs['hakim'][0]['data']}")
    summary = summarize(runs)
    m, ratio = summary["medians"], summary["ratios"]
    rows = [
        [
            side,
            f"{m[side]['tokens_per_s']:.1f}",
            f"{m[side]['pad_share']:.1%}",
            f"{m[side]['mean_tokens_per_example']:.0f}",
            f"{m[side]['peak_rss_mb']:.0f}",
            f"{m[side]['train_peak_rss_mb']:.0f}",
            f"{m[side]['train_growth_mb']:.0f}",
        ]
        for side in SIDES
    ]
    rows.append(
        [
            "hakim/trl",
            f"{ratio['tokens_per_s']:.2f}x",
            "",
            "",
            f"{ratio['peak_rss_mb']:.2f}x",
            f"{ratio['train_peak_rss_mb']:.2f}x",
            f"{ratio['train_growth_mb']:.2f}x",
        ]
    )
    print(
        common.table(
            [
                "side (median)",
                "real tok/s",
                "padding",
                "tok/example",
                "peak RSS MiB",
                "training peak MiB",
                "training growth MiB",
            ],
            rows,
        )
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "runs": runs, **summary}, handle, indent=1)


if __name__ == "__main__":
    main()
