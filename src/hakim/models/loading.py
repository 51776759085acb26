"""Load a base causal LM (4-bit nf4 or unquantized), prepare it for k-bit training, add LoRA."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ModelSpec:
    """Which base model to load and how; mirrors conf/model/*.yaml."""

    name: str
    source: str = "hub"  # hub | local | tiny_mistral | gguf_package
    path: str | None = None  # hub id, or a local directory
    gguf: dict | None = None  # source=gguf_package: where the file lies in installed packages (GgufShipment)
    cache_dir: str = ".cache/hakim/models"
    quantization: str | None = "nf4"  # nf4 | fp4 | null (unquantized)
    double_quant: bool = True
    compute_dtype: str = "auto"  # auto: bfloat16 on a GPU that supports it, else float32
    quant_storage: str = "uint8"  # dtype holding packed 4-bit weights; bfloat16 lets FSDP shard them
    gradient_checkpointing: bool = False
    # peft's k-bit preparation casts the weights left unquantized (norms, embeddings, LM head) to float32,
    # which also makes the residual stream float32: twice the checkpointed activations. false keeps them in
    # compute_dtype (what trl's SFTTrainer does); the LoRA adapters stay float32 either way.
    upcast_unquantized: bool = True
    attn_implementation: str | None = None
    trust_remote_code: bool = False

    @classmethod
    def from_dict(cls, values: dict) -> ModelSpec:
        """From a conf/model file or a run's stored config; Hydra's `_target_` is ignored, never followed."""
        return cls(**{key: value for key, value in values.items() if key != "_target_"})


@dataclass
class LoraSpec:
    """Which LoRA adapters to add; its values come from conf/lora/ (no defaults here to disagree with)."""

    r: int
    alpha: int
    dropout: float
    target_modules: list[str] | str
    fused_dropout: bool  # dropout inside lora_A, mask regenerated in backward (hakim.models.lora_dropout)
    extra: dict = field(default_factory=dict)  # any other peft.LoraConfig argument


def resolve_compute_dtype(name: str) -> torch.dtype:
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in DTYPES:
        raise ValueError(f"model.compute_dtype must be auto or one of {tuple(DTYPES)}, got {name!r}")
    return DTYPES[name]


def cpu_has_fast_bfloat16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 / AMX); without it PyTorch emulates bf16
    matmuls, measured here at 0.5 GFLOP/s against 70 in float32 on 2 AVX2 cores."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return torch.backends.cpu.get_cpu_capability() not in ("DEFAULT", "NO AVX", "AVX2")


def warn_if_slow_compute_dtype(dtype: torch.dtype, log=None) -> None:
    if dtype in (torch.bfloat16, torch.float16) and not torch.cuda.is_available() and not cpu_has_fast_bfloat16():
        import logging

        (log or logging.getLogger(__name__).warning)(
            f"model.compute_dtype={str(dtype).removeprefix('torch.')} on a CPU without native bf16 "
            f"({torch.backends.cpu.get_cpu_capability()}): matmuls run ~100x slower than float32; "
            "use model.compute_dtype=auto (float32 on CPU)"
        )


def resolve_model_path(spec: ModelSpec) -> str:
    """A local directory or hub id that `from_pretrained` can open, building/converting if needed."""
    if spec.source == "tiny_mistral":
        from hakim.models.tiny_mistral import build_tiny_mistral

        return str(build_tiny_mistral(Path(spec.cache_dir) / spec.name))
    if spec.source == "gguf_package":
        from hakim.models.gguf_package import GgufShipment, convert_gguf_package

        shipment = GgufShipment.from_config(dict(spec.gguf or {}), spec.name)
        return str(convert_gguf_package(shipment, Path(spec.cache_dir) / spec.name))
    if spec.source in ("hub", "local"):
        if not spec.path:
            raise ValueError(f"model '{spec.name}': source={spec.source} needs `path` (a hub id or a directory)")
        if spec.source == "local" and not Path(spec.path).exists():
            raise FileNotFoundError(f"model '{spec.name}': no directory at {spec.path}")
        return spec.path
    raise ValueError(f"model '{spec.name}': unknown source {spec.source!r} (hub, local, tiny_mistral, gguf_package)")


def load_tokenizer(path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(spec: ModelSpec):
    from transformers import BitsAndBytesConfig

    if spec.quantization is None:
        return None
    if spec.quantization not in ("nf4", "fp4"):
        raise ValueError(f"model.quantization must be nf4, fp4 or null, got {spec.quantization!r}")
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=spec.quantization,
        bnb_4bit_use_double_quant=spec.double_quant,
        bnb_4bit_compute_dtype=resolve_compute_dtype(spec.compute_dtype),
        bnb_4bit_quant_storage=torch.uint8 if spec.quant_storage == "uint8" else DTYPES[spec.quant_storage],
    )


def load_base_model(spec: ModelSpec, path: str | None = None):
    from transformers import AutoModelForCausalLM

    path = path or resolve_model_path(spec)
    # one whole model per process: under torchrun/SLURM each rank takes the GPU of its LOCAL_RANK
    device_map = {"": int(os.environ.get("LOCAL_RANK", 0))} if torch.cuda.is_available() else {"": "cpu"}
    kwargs = {"device_map": device_map, "trust_remote_code": spec.trust_remote_code}
    if spec.attn_implementation:
        kwargs["attn_implementation"] = spec.attn_implementation
    quantization = quantization_config(spec)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    # the weights left unquantized load in the compute dtype too (add_lora may upcast them for training)
    kwargs["dtype"] = resolve_compute_dtype(spec.compute_dtype)
    warn_if_slow_compute_dtype(kwargs["dtype"])
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if quantization is not None:
        never_repack_4bit_weights_for_cpu(model)
    return model


def add_lora(model, spec: ModelSpec, lora: LoraSpec):
    """Prepare for k-bit training when quantized, then wrap the model with trainable LoRA adapters."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if spec.quantization is not None and spec.upcast_unquantized:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=spec.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif spec.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules) if not isinstance(lora.target_modules, str) else lora.target_modules,
        task_type="CAUSAL_LM",
        **lora.extra,
    )
    peft_model = get_peft_model(model, config)
    if lora.fused_dropout and lora.dropout > 0:
        from hakim.models.lora_dropout import fuse_lora_dropout

        fuse_lora_dropout(peft_model)
    _check_adapter(peft_model)
    return peft_model


def never_repack_4bit_weights_for_cpu(model) -> int:
    """Turn off bitsandbytes' CPU inference repacking in every 4-bit linear layer; returns how many layers.

    On CPUs with AVX-512 BF16, bitsandbytes (since its fused CPU kernel, PR #1804, late 2025) repacks a layer's
    4-bit weight into another layout the first time the layer runs in eval mode on an input without gradients,
    and leaves it repacked. The repacked matmul is a bf16-only kernel with no backward: a model validated this
    way and trained again gets no gradient through its frozen base layers, and every eval-mode score is
    computed in bf16 whatever `compute_dtype` says, so the same judge scores differently on an AVX2 CPU. With
    repacking off, every CPU takes the dequantize-then-matmul path in the compute dtype, in training and
    evaluation alike.
    """
    import bitsandbytes as bnb

    layers = [module for module in model.modules() if isinstance(module, bnb.nn.Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


def _check_adapter(peft_model) -> None:
    trainable = [name for name, parameter in peft_model.named_parameters() if parameter.requires_grad]
    if not trainable:
        raise RuntimeError("LoRA added no trainable weights: check lora.target_modules against the model's layer names")
    wrong = [name for name in trainable if "lora_" not in name]
    if wrong:
        raise RuntimeError(f"weights outside LoRA are trainable ({wrong[:3]}…); only adapters should train")


def load_adapter(base_model, adapter_dir: str | Path, trainable: bool = False):
    from peft import PeftModel

    return PeftModel.from_pretrained(base_model, str(adapter_dir), is_trainable=trainable)


def backbone_and_head(peft_or_causal_lm):
    """The decoder that yields hidden states and the vocabulary projection, LoRA layers included."""
    causal_lm = (
        peft_or_causal_lm.get_base_model() if hasattr(peft_or_causal_lm, "get_base_model") else peft_or_causal_lm
    )
    return causal_lm.get_decoder(), causal_lm.get_output_embeddings()
