"""The real bitsandbytes 4-bit path on CPU: one QLoRA step trains adapters and only adapters."""

import bitsandbytes as bnb
import pytest
import torch
import torch.nn.functional as F

from hakim.models.loading import backbone_and_head
from hakim.prompting.prompt import IGNORE_INDEX
from hakim.train.fit import build_datamodule, build_module
from hakim.train.judge_module import completion_cross_entropy


@pytest.fixture
def module_and_batch(train_config):
    cfg = train_config("lora.r=8", "data.batch_size=4")
    module = build_module(cfg)
    datamodule = build_datamodule(cfg, module.tokenizer)
    datamodule.setup("fit")
    return module, next(iter(datamodule.train_dataloader()))


def test_base_is_4bit_nf4_with_double_quant(module_and_batch):
    module, _ = module_and_batch
    layers = [m for m in module.net.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers, "no 4-bit layers: the QLoRA path was not taken"
    state = layers[0].weight.quant_state
    assert layers[0].weight.dtype == torch.uint8 and state.quant_type == "nf4" and state.nested


def test_one_qlora_step_changes_lora_and_leaves_the_4bit_base(module_and_batch):
    module, batch = module_and_batch
    module.train()  # as Lightning does; in eval mode bitsandbytes repacks 4-bit weights for its CPU kernel
    frozen = {
        name: tensor.detach().clone() for name, tensor in module.net.named_parameters() if not tensor.requires_grad
    }
    lora_b = {name: tensor.detach().clone() for name, tensor in module.net.named_parameters() if "lora_B" in name}
    optimizer = torch.optim.AdamW([p for p in module.net.parameters() if p.requires_grad], lr=1e-2)
    loss = module.training_step(batch, 0)
    loss.backward()
    optimizer.step()
    changed = [
        name
        for name, tensor in module.net.named_parameters()
        if "lora_B" in name and not torch.equal(tensor, lora_b[name])
    ]
    assert len(changed) == len(lora_b)
    moved = [
        name
        for name, tensor in module.net.named_parameters()
        if name in frozen and not torch.equal(tensor, frozen[name])
    ]
    assert moved == []
    assert any(tensor.dtype == torch.uint8 for tensor in frozen.values())


def test_completion_loss_equals_full_logits_loss_without_building_them(module_and_batch):
    module, batch = module_and_batch
    backbone, head = backbone_and_head(module.net)
    with torch.no_grad():
        hidden = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        ours, n_tokens = completion_cross_entropy(hidden, batch["labels"], head, chunk_size=7)
        full_logits = head(hidden).float()
        reference = F.cross_entropy(
            full_logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten(), ignore_index=IGNORE_INDEX
        )
    assert torch.allclose(ours, reference, atol=1e-5)
    assert n_tokens == int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def test_checkpoint_holds_only_trainable_weights(module_and_batch):
    module, _ = module_and_batch
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    names = set(checkpoint["state_dict"])
    assert names and all("lora_" in name for name in names)
    size = sum(t.numel() * t.element_size() for t in checkpoint["state_dict"].values())
    assert size < sum(t.numel() * t.element_size() for t in module.state_dict().values())


def test_class_balanced_verdict_loss_alone_trains(train_config):
    import lightning as L

    cfg = train_config(
        "module.class_balanced=true", "module.verdict_loss_weight=1.0", "module.lm_loss_weight=0.0", "lora.r=4"
    )
    module = build_module(cfg)
    datamodule = build_datamodule(cfg, module.tokenizer)
    lora_b = {name: t.detach().clone() for name, t in module.net.named_parameters() if "lora_B" in name}
    L.Trainer(accelerator="cpu", fast_dev_run=2, logger=False, enable_progress_bar=False).fit(
        module, datamodule=datamodule
    )
    labels = torch.tensor([item["label"] for item in datamodule.datasets["train"].items])
    counts = torch.bincount(labels, minlength=2).float()
    assert torch.allclose(module.class_weights, counts.sum() / (2 * counts))
    assert any(not torch.equal(t, lora_b[name]) for name, t in module.net.named_parameters() if "lora_B" in name)


def test_a_loss_that_trains_nothing_is_refused(train_config):
    with pytest.raises(ValueError, match="module.lm_loss_weight and module.verdict_loss_weight are both 0"):
        build_module(train_config("module.verdict_loss_weight=0.0", "module.lm_loss_weight=0.0"))


@pytest.mark.parametrize("upcast", [True, False])
def test_unquantized_weights_are_upcast_only_when_asked(train_config, upcast):
    cfg = train_config(
        "lora.r=8",
        "data.batch_size=4",
        "model.compute_dtype=bfloat16",
        f"model.upcast_unquantized={upcast}",
        "model.gradient_checkpointing=true",
    )
    module = build_module(cfg)
    unquantized = {
        name: p.dtype
        for name, p in module.net.named_parameters()
        if "lora_" not in name and not isinstance(p, bnb.nn.Params4bit)
    }
    assert any("norm" in name for name in unquantized) and any("embed_tokens" in name for name in unquantized)
    assert set(unquantized.values()) == {torch.float32 if upcast else torch.bfloat16}
    assert {p.dtype for n, p in module.net.named_parameters() if "lora_" in n} == {
        torch.float32
    }  # adapters train in fp32

    datamodule = build_datamodule(cfg, module.tokenizer)
    datamodule.setup("fit")
    module.train()
    loss = module.training_step(next(iter(datamodule.train_dataloader())), 0)
    loss.backward()
    grads = [p.grad for n, p in module.net.named_parameters() if "lora_B" in n]  # lora_A gets none while B is 0
    assert torch.isfinite(loss) and grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_training_after_validation_keeps_the_gradients_of_the_4bit_base(train_config, monkeypatch):
    """bitsandbytes repacks 4-bit weights for CPU inference in eval mode on AVX-512 BF16 CPUs (made to believe it
    has one here), and repacked weights have no backward: Hakim's models never let it."""
    import bitsandbytes.nn.modules as bnb_modules
    import lightning as L

    monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True)
    cfg = train_config("lora.r=8", "data.batch_size=4", "lora.dropout=0")
    module = build_module(cfg)
    for name, parameter in module.net.named_parameters():
        if "lora_B" in name:  # peft starts B at zero, which would leave every lora_A gradient at zero
            torch.nn.init.normal_(parameter, std=0.02)
    datamodule = build_datamodule(cfg, module.tokenizer)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))

    def lora_gradients():
        module.train()
        module.net.zero_grad(set_to_none=True)
        loss, verdict_loss, _, _ = module.model_step(batch)
        (loss + verdict_loss).backward()
        return {name: p.grad.clone() for name, p in module.net.named_parameters() if "lora_A" in name}

    before = lora_gradients()
    modes_seen = set()
    layers = [m for m in module.net.modules() if isinstance(m, bnb.nn.Linear4bit)]
    hooks = [layer.register_forward_pre_hook(lambda layer, _: modes_seen.add(layer.training)) for layer in layers]
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
    )
    trainer.validate(module, datamodule=datamodule, verbose=False)
    for hook in hooks:
        hook.remove()
    assert modes_seen == {False}, "validation ran the 4-bit layers in eval mode, where bitsandbytes would repack"
    assert not any(getattr(layer.weight.quant_state, "packing_format_for_cpu", False) for layer in layers)
    after = lora_gradients()
    lowest = next(name for name in before if "layers.0." in name)
    assert before[lowest].abs().sum() > 0
    for name in before:
        assert torch.allclose(before[name], after[name], rtol=1e-4, atol=1e-6), (
            f"{name}: gradient changed after validation"
        )
