"""bf16 on a CPU that emulates it is ~100x slower than float32: the user is told, with the key to change."""

import torch

from hakim.models import loading as model_module


def test_emulated_bf16_on_cpu_is_flagged_with_the_key_to_change(monkeypatch):
    messages = []
    monkeypatch.setattr(model_module, "cpu_has_fast_bfloat16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model_module.warn_if_slow_compute_dtype(torch.bfloat16, log=messages.append)
    model_module.warn_if_slow_compute_dtype(torch.float32, log=messages.append)
    assert len(messages) == 1 and "model.compute_dtype=auto" in messages[0] and "bfloat16" in messages[0]

    monkeypatch.setattr(model_module, "cpu_has_fast_bfloat16", lambda: True)
    model_module.warn_if_slow_compute_dtype(torch.bfloat16, log=messages.append)
    assert len(messages) == 1


def test_auto_is_float32_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert model_module.resolve_compute_dtype("auto") is torch.float32
