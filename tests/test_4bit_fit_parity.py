"""A 4-bit fit learns exactly as an unquantized fit of the same weights, at every point of a real Trainer.fit.

The reference is the tiny Mistral with every 4-bit layer replaced by its own dequantized weights, loaded
unquantized: the two models compute the same function, so from one seed their per-step losses and final
adapters agree to float rounding. A fit that loses the gradients through the frozen 4-bit layers (as
bitsandbytes' CPU repacking did after an eval-mode pass) drifts away from the reference at the next step.

bitsandbytes decides per layer, when the layer is built, whether this CPU may repack (AVX-512 BF16 only);
the tests make it decide yes on every CPU, so the dangerous path is exercised on AVX2 machines too.
"""

import csv
import json

import bitsandbytes as bnb
import bitsandbytes.nn.modules as bnb_modules
import pytest
import torch

from conftest import compose_config
from hakim.models.loading import ModelSpec, load_base_model
from hakim.train.checkpoints import load_checkpoint
from hakim.train.fit import train

# float32 rounding of the same computation by two paths (bitsandbytes' dequantize-then-matmul and the plain
# linear layer, forward and backward): measured here at 1e-7 on losses, 1e-8 on adapter weights
LOSS_TOLERANCE = 1e-5
ADAPTER_TOLERANCE = 1e-6


@pytest.fixture
def repacking_cpu(monkeypatch):
    """Every 4-bit layer built from now on believes this CPU has AVX-512 BF16, as bitsandbytes' own check says on
    one."""
    monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True)


@pytest.fixture(scope="module")
def dequantized_reference(tiny_model_dir, tmp_path_factory):
    """The tiny Mistral with each 4-bit-quantized linear weight replaced by its nf4 round trip, saved unquantized."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quantized = load_base_model(ModelSpec(name="tiny_mistral", source="local", path=str(tiny_model_dir)))
    round_trips = {
        f"{name}.weight": bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float()
        for name, layer in quantized.named_modules()
        if isinstance(layer, bnb.nn.Linear4bit)
    }
    assert round_trips, "no 4-bit layers to take the weights of"
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    state = reference.state_dict()
    assert set(round_trips) <= set(state)
    reference.load_state_dict({**state, **round_trips})
    target = tmp_path_factory.mktemp("tiny_mistral_dequantized")
    reference.save_pretrained(target)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(target)
    return target


FIT = [
    "data.max_length=160",
    "data.batch_size=4",
    "lora.r=8",
    "optim.optimizer.lr=1e-2",
    "module.verdict_loss_weight=1.0",
    "trainer.max_steps=6",
    "trainer.log_every_n_steps=1",
    "trainer.num_sanity_val_steps=1",  # the sanity check: an eval-mode pass before the first step
    "trainer.val_check_interval=2",
    "data.eval_batch_size=8",
    "trainer.limit_val_batches=1",
    "callbacks.last_checkpoint.every_n_train_steps=3",
    "callbacks.last_checkpoint.save_top_k=-1",
    "trainer.enable_progress_bar=false",
    "print_config=false",
]


def _fit(workspace, run_dir, model_overrides, *extra):
    train(compose_config("train", workspace, run_dir, [*FIT, *model_overrides, *extra]))
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    losses = {int(row["step"]): float(row["train/loss"]) for row in rows if row.get("train/loss")}
    return losses, load_checkpoint(run_dir / "checkpoints" / "latest-step6.ckpt")["state_dict"]  # after the last step


def _assert_same_fit(fit, reference, what):
    losses, adapter = fit
    reference_losses, reference_adapter = reference
    assert sorted(losses) == sorted(reference_losses), what
    for step in sorted(losses):
        assert losses[step] == pytest.approx(reference_losses[step], abs=LOSS_TOLERANCE), f"{what}: loss at step {step}"
    assert adapter.keys() == reference_adapter.keys()
    for name in adapter:
        assert torch.allclose(adapter[name], reference_adapter[name], atol=ADAPTER_TOLERANCE, rtol=0), f"{what}: {name}"


def test_a_4bit_fit_with_validation_and_checkpoints_tracks_the_unquantized_fit(
    repacking_cpu, workspace, tiny_model_dir, sample_dataset, dequantized_reference, tmp_path
):
    nf4 = _fit(workspace, tmp_path / "nf4", [])
    unquantized = _fit(
        workspace,
        tmp_path / "unquantized",
        ["model.source=local", f"model.path={dequantized_reference}", "model.quantization=null"],
    )
    assert sorted(nf4[0]) == list(range(6)) and nf4[0][5] < nf4[0][0]  # six steps logged, and the loss moved
    _assert_same_fit(nf4, unquantized, "nf4 vs unquantized")
    assert json.loads((tmp_path / "nf4" / "run.json").read_text())["status"] == "ok"

    # resumed from the checkpoint after three steps (saved after a validation), the last three steps again
    checkpoint = next((tmp_path / "nf4" / "checkpoints").glob("latest-step3*.ckpt"))
    resumed_losses, resumed_adapter = _fit(workspace, tmp_path / "nf4_resumed", [], f"ckpt_path={checkpoint}")
    later = {step: loss for step, loss in nf4[0].items() if step >= 3}
    _assert_same_fit(({s: resumed_losses[s] for s in later}, resumed_adapter), (later, nf4[1]), "nf4 resumed vs nf4")
