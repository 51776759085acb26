"""7B QLoRA on one GPU: peak memory, tokens/s and MFU of Hakim's loss path against trl's and HF's.

    python bench/gpu_qlora.py                      # Mistral-7B shape, needs a CUDA GPU (~5 min on an H100)
    python bench/gpu_qlora.py --scale tiny         # the same code on a tiny Mistral; runs on CPU

The model has Mistral-7B's exact configuration (MistralConfig defaults: hidden 4096, 32 layers, 32
heads, 8 KV heads, intermediate 14336, vocab 32000) with random weights. It is built on the meta
device and materialized one linear layer at a time straight into nf4 (double quant) on the
device, so no checkpoint is downloaded and no fp32 copy of 7B weights ever exists. Then Hakim's own
`add_lora` (prepare_model_for_kbit_training + LoRA r=64 on all linear layers) and AdamW on the
adapters, bf16 autocast on a GPU (Hakim's gpu trainer: bf16-mixed), fp32 on CPU.

Sequences are --seq-len tokens of random ids, no padding, with the last --completion-tokens
positions labelled (a judge answer; the prompt is masked). For micro-batches 1/4/8, with and
without gradient checkpointing, three loss paths:
- hakim: backbone → completion_cross_entropy (only labelled positions reach the vocabulary), with
  the LoRA dropout inside lora_A (hakim.models.lora_dropout), as train.py builds it.
- trl: SFTTrainer's loss path without its Trainer loop: trl's add_fused_lm_head and
  `model(..., labels=labels, fused_lm_head=True)` (chunked log-probs; on CUDA with Triton only the
  labelled positions, elsewhere every position).
- hf: `model(labels=labels).loss`, the full batch × sequence × vocabulary logits.
trl and hf get peft's LoRA dropout as it comes (its own module; mask and dropped input kept).
Each path also gets its tool's precision set-up and optimizer (PATH_SETUP): Hakim's 7B recipe keeps
norms, embeddings and head in bf16 with float32 adapters and 8-bit AdamW; trl's SFTTrainer keeps them
in bf16 and casts the adapters to bf16 (fused torch AdamW); the classic QLoRA notebook (hf) upcasts
them to float32 with peft's prepare_model_for_kbit_training (torch AdamW). A fresh optimizer per row.

MFU counts model FLOPs only (no recomputation, no dequantization): 4·P_base (frozen weights need
input gradients only) + 6·P_lora + 6·S·h·L causal attention per token, and the LM head at the
labelled positions only, divided by the GPU's dense bf16 peak (--peak-tflops to override).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

PEAK_BF16_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100": 989.4,
    "H200": 989.4,
    "GH200": 989.4,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
}
LOSS_PATHS = ("hakim", "trl", "hf")
# how each tool sets a 4-bit model up for training on a GPU: (weights left unquantized, LoRA adapters, optimizer);
# "compute" is the compute dtype (bf16). On CPU everything is float32 and every path uses torch's AdamW.
PATH_SETUP = {
    # conf/model/malaysian_mistral_7b.yaml (upcast_unquantized: false) + the v2/v3 optimizer, bitsandbytes 8-bit
    # AdamW (measured unpaged: paged states live in managed memory, which torch's peak does not count)
    "hakim": ("compute", "float32", "adamw_8bit"),
    # SFTTrainer 1.16 on a 4-bit model: no k-bit upcast, adapters cast to bf16, TrainingArguments' default optimizer
    "trl": ("compute", "compute", "adamw_torch_fused"),
    # the classic QLoRA notebook: peft's prepare_model_for_kbit_training (float32 upcast), torch AdamW
    "hf": ("float32", "float32", "adamw_torch"),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="7b", choices=["7b", "tiny"])
    parser.add_argument("--batch-sizes", default=None, help="comma-separated micro-batches (7b: 1,4,8; tiny: 1,2)")
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per sequence (7b: 2048; tiny: 64)")
    parser.add_argument(
        "--completion-tokens",
        type=int,
        default=None,
        help="labelled positions at the end of each sequence (7b: 64; tiny: 16)",
    )
    parser.add_argument("--loss", default=",".join(LOSS_PATHS), help=f"comma-separated, of {LOSS_PATHS}")
    parser.add_argument("--checkpointing", default="both", choices=["both", "on", "off"])
    parser.add_argument("--lora-r", type=int, default=64)
    parser.add_argument("--lora-alpha", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per configuration")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--loss-chunk-size", type=int, default=2048, help="Hakim's module.loss_chunk_size")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the GPU, for MFU")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="after each row, profile one more step (torch.profiler) and write its top ops to DIR",
    )
    args = parser.parse_args(argv)
    args.batch_sizes = [int(b) for b in (args.batch_sizes or ("1,4,8" if args.scale == "7b" else "1,2")).split(",")]
    args.seq_len = args.seq_len or (2048 if args.scale == "7b" else 64)
    args.completion_tokens = args.completion_tokens or (64 if args.scale == "7b" else 16)
    args.loss = [name for name in args.loss.split(",") if name]
    unknown = set(args.loss) - set(LOSS_PATHS)
    if unknown:
        parser.error(f"unknown --loss {sorted(unknown)}; choose from {LOSS_PATHS}")
    if args.completion_tokens >= args.seq_len:
        parser.error("--completion-tokens must be below --seq-len")
    return args


def model_config(scale: str):
    from transformers import MistralConfig

    if scale == "7b":
        config = MistralConfig()  # the defaults are Mistral-7B-v0.1's shape
        expected = dict(
            hidden_size=4096,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            intermediate_size=14336,
            vocab_size=32000,
        )
        wrong = {k: getattr(config, k) for k, v in expected.items() if getattr(config, k) != v}
        if wrong:
            raise RuntimeError(f"MistralConfig defaults are no longer Mistral-7B's: {wrong}; set them explicitly")
    else:
        config = MistralConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=1024,
            max_position_embeddings=4096,
        )
    config.tie_word_embeddings = False
    return config


def build_quantized_model(config, device, compute_dtype, seed: int = 0):
    """Random-weight causal LM whose linear layers are nf4 (double quant), built without a full-precision copy."""
    import bitsandbytes as bnb
    import torch
    from torch import nn
    from transformers import MistralForCausalLM

    generator = torch.Generator(device=device).manual_seed(seed)

    def random(*shape):
        return torch.randn(*shape, generator=generator, device=device, dtype=compute_dtype) * 0.02

    with torch.device("meta"):
        model = MistralForCausalLM(config)
    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, child in list(parent.named_children()):
                if not isinstance(child, nn.Linear):
                    continue
                with torch.device("meta"):
                    quantized = bnb.nn.Linear4bit(
                        child.in_features,
                        child.out_features,
                        bias=False,
                        compute_dtype=compute_dtype,
                        compress_statistics=True,
                        quant_type="nf4",
                    )
                weight = random(child.out_features, child.in_features)
                quantized.weight = bnb.nn.Params4bit(
                    weight, requires_grad=False, compress_statistics=True, quant_type="nf4"
                ).to(device)  # .to() quantizes
                del weight
                setattr(parent, name, quantized)
        for norm in (layer.input_layernorm, layer.post_attention_layernorm):
            norm.weight = nn.Parameter(torch.ones(config.hidden_size, device=device, dtype=compute_dtype))
    model.model.norm.weight = nn.Parameter(torch.ones(config.hidden_size, device=device, dtype=compute_dtype))
    model.model.embed_tokens.weight = nn.Parameter(random(config.vocab_size, config.hidden_size))
    model.lm_head.weight = nn.Parameter(random(config.vocab_size, config.hidden_size))
    with torch.device("cpu"):  # inv_freq is computed at construction; the meta copy holds no values
        rotary = type(model.model.rotary_emb)(config=config)
    model.model.rotary_emb = rotary.to(device)
    left = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if left:
        raise RuntimeError(f"still on the meta device after building: {left[:5]}")
    model.is_loaded_in_4bit = True  # what from_pretrained(quantization_config=...) sets; peft reads it
    model.config.use_cache = False
    return model


def add_adapters(model, args):
    from hakim.models.loading import LoraSpec, ModelSpec, add_lora

    spec = ModelSpec(
        name=f"mistral_{args.scale}_random", source="local", quantization="nf4", gradient_checkpointing=True
    )
    # peft's own dropout to start with; the hakim path fuses it into lora_A (hakim.models.lora_dropout) as train.py does
    return add_lora(
        model,
        spec,
        LoraSpec(r=args.lora_r, alpha=args.lora_alpha, dropout=0.05, target_modules="all-linear", fused_dropout=False),
    )


def flops_per_token(config, args) -> float:
    h, layers, seq = config.hidden_size, config.num_hidden_layers, args.seq_len
    kv = config.num_key_value_heads * (h // config.num_attention_heads)
    shapes = [
        (h, h),
        (h, kv),
        (h, kv),
        (h, h),
        (h, config.intermediate_size),
        (h, config.intermediate_size),
        (config.intermediate_size, h),
    ]
    base = layers * sum(i * o for i, o in shapes)
    lora = layers * args.lora_r * sum(i + o for i, o in shapes)
    attention = 6 * seq * h * layers
    head = 4 * config.vocab_size * h * args.completion_tokens / seq
    return 4 * base + 6 * lora + attention + head


def peak_tflops(args, device) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    if device.type != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name(device)
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key in name:
            return PEAK_BF16_TFLOPS[key]
    return None


def make_loss(path: str, model, args):

    from hakim.models.loading import backbone_and_head
    from hakim.train.judge_module import completion_cross_entropy

    if path == "hakim":

        def loss(batch):
            backbone, head = backbone_and_head(model)
            hidden = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            return completion_cross_entropy(hidden, batch["labels"], head, args.loss_chunk_size)[0]
    elif path == "trl":

        def loss(batch):
            return model(**batch, use_cache=False, fused_lm_head=True).loss
    else:

        def loss(batch):
            return model(**batch, use_cache=False).loss

    return loss


def batch_of(batch_size: int, config, args, device):
    import torch

    generator = torch.Generator().manual_seed(batch_size)
    input_ids = torch.randint(3, config.vocab_size, (batch_size, args.seq_len), generator=generator)
    labels = torch.full_like(input_ids, -100)
    labels[:, -args.completion_tokens :] = input_ids[:, -args.completion_tokens :]
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": torch.ones_like(input_ids).to(device),
        "labels": labels.to(device),
    }


def path_setup(path: str, cuda: bool) -> tuple[str, str, str]:
    """(unquantized weights, adapters, optimizer) for `path` on this device: PATH_SETUP on a GPU, float32 on CPU."""
    return PATH_SETUP[path] if cuda else ("float32", "float32", "adamw_torch")


def set_up_path(model, path: str, compute_dtype, cuda: bool):
    """Cast the unquantized weights and the adapters as `path`'s tool would, and build its optimizer."""
    import bitsandbytes as bnb
    import torch

    unquantized, adapters, optimizer = path_setup(path, cuda)
    dtypes = {"compute": compute_dtype, "float32": torch.float32}
    for name, parameter in model.named_parameters():
        if isinstance(parameter, bnb.nn.Params4bit):
            continue
        parameter.data = parameter.data.to(dtypes[adapters if "lora_" in name else unquantized])
    trainable = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adamw_8bit":
        return bnb.optim.AdamW8bit(trainable, lr=2e-4, weight_decay=0.0)
    return torch.optim.AdamW(trainable, lr=2e-4, weight_decay=0.0, fused=optimizer == "adamw_torch_fused")


def profile_one_step(step, args, cuda: bool, label: str) -> None:
    """Write the top ops of one step by device time (and by CPU time) to --profile/<label>.txt."""
    from pathlib import Path

    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()
        if cuda:
            torch.cuda.synchronize()
    averages = prof.key_averages()
    device_key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{label}.txt").write_text(
        f"# by {device_key}\n{averages.table(sort_by=device_key, row_limit=25, max_name_column_width=70)}\n"
        f"# by cpu_time_total\n{averages.table(sort_by='cpu_time_total', row_limit=15, max_name_column_width=70)}\n"
    )


def measure(model, optimizer, loss_fn, batch, args, device, autocast_dtype, label: str) -> dict:
    import contextlib

    import common
    import torch

    def step():
        context = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
        with context:
            loss = loss_fn(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    with common.PeakRss() as rss:
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    tokens = batch["input_ids"].numel() * args.steps
    if args.profile:
        profile_one_step(step, args, cuda, label)
    result = {"tokens_per_s": tokens / seconds, "loss": loss, "peak_rss_mb": rss.peak}
    if cuda:
        result["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        result["peak_gpu_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
        result["model_gib"] = before / 2**30
    return result


def summary(results: list[dict], memory_key: str) -> str:
    """Hakim over each alternative per configuration (ratios last), then the issue's two GPU targets."""
    import common

    by_key = {(r["checkpointing"], r["micro_batch"], r["loss_path"]): r for r in results}
    rows, lines = [], []
    for (checkpointing, micro_batch, path), hakim in by_key.items():
        if path != "hakim":
            continue
        for other in ("trl", "hf"):
            alternative = by_key.get((checkpointing, micro_batch, other))
            if alternative is None:
                continue
            if hakim.get("oom") or alternative.get("oom"):
                speed = memory = "hakim OOM" if hakim.get("oom") else f"{other} OOM"
            else:
                speed = f"{hakim['tokens_per_s'] / alternative['tokens_per_s']:.2f}x"
                memory = f"{hakim[memory_key] / alternative[memory_key]:.2f}x"
            rows.append(["on" if checkpointing else "off", micro_batch, f"hakim / {other}", speed, memory])
    target = by_key.get((True, 8, "hakim"))
    if target and not target.get("oom") and memory_key == "peak_gpu_gib":
        lines.append(
            f"# target: micro-batch 8 x seq with checkpointing under 16 GiB peak: "
            f"{target[memory_key]:.1f} GiB -> {'met' if target[memory_key] < 16 else 'NOT met'}"
        )
        trl = by_key.get((True, 8, "trl"))
        if trl and not trl.get("oom"):
            ratio = target["tokens_per_s"] / trl["tokens_per_s"]
            lines.append(
                f"# target: >= 1.3x trl's tokens/s there: {ratio:.2f}x -> {'met' if ratio >= 1.3 else 'NOT met'}"
            )
    return "\n".join([common.table(["ckpt", "micro-batch", "ratio", "tokens/s", "peak memory"], rows), *lines])


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    cuda = torch.cuda.is_available()
    if args.scale == "7b" and not cuda:
        print(
            "gpu_qlora: no CUDA GPU here, so the 7B measurement cannot run. Run it on a machine with a GPU, "
            "or `python bench/gpu_qlora.py --scale tiny` to check the same code on CPU."
        )
        return 0
    import common

    from hakim.models.lora_dropout import fuse_lora_dropout, unfuse_lora_dropout

    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    compute_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    autocast_dtype = torch.bfloat16 if compute_dtype == torch.bfloat16 else None
    config = model_config(args.scale)
    started = time.perf_counter()
    model = add_adapters(build_quantized_model(config, device, compute_dtype), args)
    built = time.perf_counter() - started
    base = model.get_base_model()
    if "trl" in args.loss:
        try:
            from trl.trainer.utils import add_fused_lm_head
        except ImportError:
            print("gpu_qlora: trl is not installed; skipping the trl loss path")
            args.loss = [p for p in args.loss if p != "trl"]
        else:
            add_fused_lm_head(base, outputs=("log_probs", "entropy", "is_top1"))  # what SFTTrainer asks for
    peak = peak_tflops(args, device)
    per_token = flops_per_token(config, args)
    device_name = torch.cuda.get_device_name(device) if cuda else common.machine()
    print(
        f"# {device_name}; {args.scale} Mistral (random, nf4 double quant) built in {built:.0f}s; LoRA r={args.lora_r} "
        f"all-linear; seq {args.seq_len}, {args.completion_tokens} labelled; {per_token / 1e9:.2f} GFLOP/token; "
        f"peak {peak or 'unknown'} TFLOPS",
        flush=True,
    )

    checkpointing = {"both": [False, True], "on": [True], "off": [False]}[args.checkpointing]
    results = []
    for use_checkpointing in checkpointing:
        if use_checkpointing:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            base.gradient_checkpointing_disable()
        model.train()
        for batch_size in args.batch_sizes:
            batch = batch_of(batch_size, config, args, device)
            for path in args.loss:
                (fuse_lora_dropout if path == "hakim" else unfuse_lora_dropout)(model)
                optimizer = set_up_path(model, path, compute_dtype, cuda)
                row = {
                    "loss_path": path,
                    "micro_batch": batch_size,
                    "checkpointing": use_checkpointing,
                    "setup": dict(zip(("unquantized", "adapters", "optimizer"), path_setup(path, cuda), strict=True)),
                }
                label = f"{path}_mb{batch_size}_ckpt_{'on' if use_checkpointing else 'off'}"
                try:
                    row.update(
                        measure(
                            model, optimizer, make_loss(path, model, args), batch, args, device, autocast_dtype, label
                        )
                    )
                    row["mfu"] = row["tokens_per_s"] * per_token / (peak * 1e12) if peak else None
                except torch.OutOfMemoryError:
                    row["oom"] = True
                optimizer.zero_grad(set_to_none=True)
                del optimizer
                gc.collect()
                if cuda:
                    torch.cuda.empty_cache()
                results.append(row)
                print("  " + json.dumps(row), flush=True)
            del batch

    headers = [
        "ckpt",
        "micro-batch",
        "loss path",
        "tokens/s",
        "MFU",
        "peak GPU GiB" if cuda else "peak RSS MiB",
        "vs hakim tok/s",
        "vs hakim mem",
    ]
    by_key = {(r["checkpointing"], r["micro_batch"], r["loss_path"]): r for r in results}
    rows = []
    for r in results:
        memory_key = "peak_gpu_gib" if cuda else "peak_rss_mb"
        ref = by_key.get((r["checkpointing"], r["micro_batch"], "hakim"), {})
        if r.get("oom"):
            rows.append(
                ["on" if r["checkpointing"] else "off", r["micro_batch"], r["loss_path"], "OOM", "", "", "", ""]
            )
            continue
        ratio_speed = f"{r['tokens_per_s'] / ref['tokens_per_s']:.2f}x" if "tokens_per_s" in ref else "hakim OOM"
        ratio_mem = f"{r[memory_key] / ref[memory_key]:.2f}x" if memory_key in ref else ""
        rows.append(
            [
                "on" if r["checkpointing"] else "off",
                r["micro_batch"],
                r["loss_path"],
                f"{r['tokens_per_s']:.0f}",
                f"{r['mfu']:.1%}" if r.get("mfu") is not None else "n/a",
                f"{r[memory_key]:.1f}",
                ratio_speed,
                ratio_mem,
            ]
        )
    print(common.table(headers, rows))
    print(summary(results, "peak_gpu_gib" if cuda else "peak_rss_mb"))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "args": vars(args),
                    "device": device_name,
                    "flops_per_token": per_token,
                    "peak_tflops": peak,
                    "results": results,
                },
                handle,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
