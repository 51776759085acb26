"""LoRA dropout that keeps no mask and no dropped copy of the input for backward.

peft computes `lora_B(lora_A(dropout(x)))` in every adapted projection. Autograd then keeps, per
projection, the dropout mask and the dropped copy of `x` (the input `lora_A` saw) until backward:
with dropout on all seven projections of a decoder layer that is most of a QLoRA step's activation
memory, although q/k/v (and gate/up) share one `x` that is kept alive anyway.

`DropoutLoraA` replaces `lora_A` (same `weight`, so adapter files and merging do not change) and
applies the dropout itself inside one autograd function that saves only `x` and a random seed. The
backward pass regenerates the same mask from the seed. The seed is drawn from torch's default
generator, so a seeded run is reproducible and activation checkpointing (which restores the RNG
state before recomputing) regenerates the same masks. Mathematically this is the same LoRA with the
same dropout rate; only the masks are drawn differently.
"""

from __future__ import annotations

import torch
from torch import nn

SEED_RANGE = 2**62


def keep_mask(like: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """0/1 keep-mask in `like`'s dtype, a function of (shape, device, dtype, p, seed) only."""
    generator = torch.Generator(device=like.device).manual_seed(seed)
    if like.device.type == "cuda":
        # one kernel writing the mask straight in the input's dtype: on a GPU the mask is pure memory
        # traffic (three draws per step with checkpointing), so every pass over it counts
        return torch.empty(like.shape, dtype=like.dtype, device=like.device).bernoulli_(1 - p, generator=generator)
    # on CPU, uniform float32 draws compared in place are about twice as fast as bernoulli_
    mask = torch.rand(like.shape, generator=generator, dtype=torch.float32, device=like.device).lt_(1 - p)
    return mask.to(like.dtype)


def dropout_mask(like: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """The keep-mask scaled by 1/(1-p): what inverted dropout multiplies the input by."""
    return keep_mask(like, p, seed).div_(1 - p)


class _DropoutThenLinear(torch.autograd.Function):
    """linear(x * mask / (1-p), W), with the 1/(1-p) applied on the narrow (rank-wide) side."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, p: float, seed: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.p, ctx.seed = p, seed
        return nn.functional.linear(x * keep_mask(x, p, seed), weight.to(x.dtype)) * (1 / (1 - p))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, weight = ctx.saved_tensors
        mask = keep_mask(x, ctx.p, ctx.seed)
        scaled = grad_output * (1 / (1 - ctx.p))
        grad_x = grad_weight = None
        if ctx.needs_input_grad[1]:
            dropped = (x * mask).reshape(-1, x.size(-1))
            grad_weight = (scaled.reshape(-1, scaled.size(-1)).t() @ dropped.to(scaled.dtype)).to(weight.dtype)
            del dropped
        if ctx.needs_input_grad[0]:
            grad_x = (scaled @ weight.to(scaled.dtype)).to(x.dtype).mul_(mask)
        return grad_x, grad_weight, None, None


class DropoutLoraA(nn.Linear):
    """`lora_A` with its dropout built in; plain `lora_A` in eval mode or without gradients."""

    def __init__(self, lora_a: nn.Linear, p: float):
        if lora_a.bias is not None:
            raise ValueError("LoRA A projections have no bias")
        super().__init__(lora_a.in_features, lora_a.out_features, bias=False, device="meta")
        self.weight = lora_a.weight  # the same Parameter: optimizers, state dicts and adapter files see no change
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.p > 0 and torch.is_grad_enabled()):
            return nn.functional.linear(x, self.weight.to(x.dtype))
        seed = int(torch.randint(SEED_RANGE, ()))
        return _DropoutThenLinear.apply(x, self.weight, self.p, seed)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dropout={self.p}"


def fuse_lora_dropout(peft_model) -> int:
    """Move each adapted layer's dropout into its `lora_A`; returns how many layers changed.

    Layers with a LoRA variant (DoRA and the like) are left as peft built them.
    """
    changed = 0
    for module in peft_model.modules():
        if not (hasattr(module, "lora_A") and hasattr(module, "lora_dropout")):
            continue
        for adapter, dropout in list(module.lora_dropout.items()):
            if not isinstance(dropout, nn.Dropout) or adapter in getattr(module, "lora_variant", {}):
                continue
            lora_a = module.lora_A[adapter]
            if isinstance(lora_a, DropoutLoraA) or type(lora_a) is not nn.Linear:
                continue
            module.lora_A[adapter] = DropoutLoraA(lora_a, dropout.p)
            module.lora_dropout[adapter] = nn.Identity()
            changed += 1
    return changed


def unfuse_lora_dropout(peft_model) -> int:
    """Undo `fuse_lora_dropout`: peft's own dropout module and a plain `lora_A` on the same weight."""
    changed = 0
    for module in peft_model.modules():
        if not (hasattr(module, "lora_A") and hasattr(module, "lora_dropout")):
            continue
        for adapter, lora_a in list(module.lora_A.items()):
            if not isinstance(lora_a, DropoutLoraA):
                continue
            plain = nn.Linear(lora_a.in_features, lora_a.out_features, bias=False, device="meta")
            plain.weight = lora_a.weight
            module.lora_A[adapter] = plain
            module.lora_dropout[adapter] = nn.Dropout(lora_a.p)
            changed += 1
    return changed
