"""LoRA dropout inside lora_A: same function and gradients as explicit dropout, less saved for backward."""

import torch
import torch.nn.functional as F
from torch import nn

from hakim.models.loading import LoraSpec, ModelSpec, add_lora, load_base_model
from hakim.models.lora_dropout import SEED_RANGE, DropoutLoraA, dropout_mask


def test_output_and_gradients_equal_explicit_dropout_with_the_same_mask():
    torch.manual_seed(1)
    plain = nn.Linear(12, 4, bias=False)
    fused = DropoutLoraA(plain, p=0.3).train()
    x = torch.randn(2, 5, 12, requires_grad=True)
    torch.manual_seed(7)
    out = fused(x)
    (out * torch.arange(4.0)).sum().backward()
    fused_x_grad, fused_w_grad = x.grad.clone(), fused.weight.grad.clone()

    torch.manual_seed(7)
    mask = dropout_mask(x, 0.3, int(torch.randint(SEED_RANGE, ())))
    x.grad, fused.weight.grad = None, None
    reference = F.linear(x * mask, plain.weight)
    (reference * torch.arange(4.0)).sum().backward()
    assert torch.allclose(out, reference)
    assert torch.allclose(fused_x_grad, x.grad) and torch.allclose(fused_w_grad, plain.weight.grad)
    assert (mask == 0).any(), "the mask dropped nothing: the comparison proves little"


def test_mask_drops_at_the_rate_asked_and_only_while_training_with_gradients():
    mask = dropout_mask(torch.empty(200_000), 0.1, seed=3)
    assert abs((mask == 0).float().mean().item() - 0.1) < 0.005
    assert torch.allclose(mask[mask != 0], torch.tensor(1 / 0.9))
    plain = nn.Linear(8, 2, bias=False)
    fused = DropoutLoraA(plain, p=0.5)
    x = torch.randn(64, 8)
    assert torch.equal(fused.eval()(x), plain(x))
    with torch.no_grad():
        assert torch.equal(fused.train()(x), plain(x))
    assert not torch.equal(fused.train()(x.requires_grad_()), plain(x))


def _tiny_lora(tiny_model_dir, fused: bool, checkpointing: bool = False, quantization: str | None = "nf4"):
    spec = ModelSpec(
        name="tiny",
        source="local",
        path=str(tiny_model_dir),
        quantization=quantization,
        gradient_checkpointing=checkpointing,
    )
    torch.manual_seed(0)
    model = add_lora(
        load_base_model(spec),
        spec,
        LoraSpec(r=8, alpha=16, dropout=0.1, target_modules="all-linear", fused_dropout=fused),
    )
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero, which would leave every lora_A gradient at zero
            nn.init.normal_(parameter, std=0.02)
    return model.train()


def _saved_bytes_and_loss(model, input_ids):
    stored = {}

    def pack(tensor):
        stored[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(input_ids=input_ids).logits.float().logsumexp(-1).mean()
    return sum(stored.values()), loss


def test_fused_4bit_model_keeps_adapter_names_and_saves_less_for_backward(tiny_model_dir):
    input_ids = torch.randint(0, 200, (4, 96))
    plain, fused = _tiny_lora(tiny_model_dir, fused=False), _tiny_lora(tiny_model_dir, fused=True)
    assert set(plain.state_dict()) == set(fused.state_dict())
    assert any(isinstance(m, DropoutLoraA) for m in fused.modules())
    plain_bytes, _ = _saved_bytes_and_loss(plain, input_ids)
    fused_bytes, loss = _saved_bytes_and_loss(fused, input_ids)
    assert fused_bytes < 0.8 * plain_bytes, (fused_bytes, plain_bytes)
    loss.backward()
    grads = [p.grad for p in fused.parameters() if p.requires_grad]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_activation_checkpointing_regenerates_the_same_masks(tiny_model_dir):
    input_ids = torch.randint(0, 200, (2, 48))
    gradients = []
    for checkpointing in (False, True):
        model = _tiny_lora(tiny_model_dir, fused=True, checkpointing=checkpointing, quantization=None)
        torch.manual_seed(5)
        model(input_ids=input_ids).logits.float().logsumexp(-1).mean().backward()
        gradients.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert gradients[0].keys() == gradients[1].keys()
    assert all(grad.abs().sum() > 0 for grad in gradients[0].values())
    for name, grad in gradients[0].items():
        assert torch.allclose(grad, gradients[1][name], atol=1e-6, rtol=1e-4), name


def test_unfuse_restores_peft_dropout_on_the_same_weights(tiny_model_dir):
    from hakim.models.lora_dropout import fuse_lora_dropout, unfuse_lora_dropout

    model = _tiny_lora(tiny_model_dir, fused=True)
    weights = {name: p for name, p in model.named_parameters() if p.requires_grad}
    fused_layers = sum(isinstance(m, DropoutLoraA) for m in model.modules())
    assert unfuse_lora_dropout(model) == fused_layers > 0
    assert not any(isinstance(m, DropoutLoraA) for m in model.modules())
    assert any(isinstance(m, nn.Dropout) and m.p == 0.1 for m in model.modules())
    assert all(p is weights[name] for name, p in model.named_parameters() if p.requires_grad)
    assert fuse_lora_dropout(model) == fused_layers
