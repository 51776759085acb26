"""A handed-over run directory never runs code through resume=/rerun=: only Hakim's own exact targets build."""

import re
import shutil

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from conftest import CONF_DIR, RunsACommand, compose_config
from hakim.train.fit import train
from hakim.train.saved_config import TRUSTED_TARGETS, UntrustedConfig, check_saved_config


def targets_in(node, inside_hydra: bool = False) -> set[str]:
    """Every `_target_` a config names, except Hydra's own settings (conf/hydra/, `hydra:` keys): they never
    reach a run's config.yaml."""
    if isinstance(node, dict):
        found = {node["_target_"]} if "_target_" in node and not inside_hydra else set()
        for key, value in node.items():
            found |= targets_in(value, inside_hydra or key == "hydra")
        return found
    if isinstance(node, list):
        return set().union(*(targets_in(item, inside_hydra) for item in node)) if node else set()
    return set()


def test_the_trusted_targets_are_exactly_those_hakims_configs_name():
    task_configs = [path for path in CONF_DIR.rglob("*.yaml") if path.relative_to(CONF_DIR).parts[0] != "hydra"]
    named = set().union(*(targets_in(yaml.safe_load(path.read_text())) for path in task_configs))
    assert named == TRUSTED_TARGETS


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["experiment=v3"],
        ["experiment=proxy"],
        ["trainer=ddp_cpu"],
        ["logger=wandb"],
        ["callbacks=rank_audit"],
        ["callbacks=early_stopping"],
        ["debug=profiler"],
        ["optim=paged_adamw_8bit"],
    ],
)
def test_every_config_hakim_composes_passes_the_check(workspace, tmp_path, overrides):
    config = OmegaConf.to_container(compose_config("train", workspace, tmp_path, overrides), resolve=True)
    check_saved_config(config, "config.yaml")


UNPICKLE = "<a pickle whose loading runs a command>"
# (where in the saved config, what is put there, what the refusal names)
PAYLOADS = {
    "lightning loader": (
        ("callbacks", "evil"),
        {"_target_": "lightning.fabric.utilities.cloud_io._load", "path_or_url": UNPICKLE, "weights_only": False},
        "callbacks.evil._target_ is 'lightning.fabric.utilities.cloud_io._load'",
    ),
    "lightning class by name": (
        ("callbacks", "evil"),
        {"_target_": "lightning.pytorch.cli.instantiate_class", "args": [], "init": {"class_path": "os.system"}},
        "'lightning.pytorch.cli.instantiate_class'",
    ),
    "hydra get_method": (
        ("callbacks", "evil"),
        {"_target_": "hydra.utils.get_method", "path": "os.system"},
        "'hydra.utils.get_method'",
    ),
    "builtins": (("callbacks", "evil"), {"_target_": "builtins.exec", "_args_": ["import os"]}, "'builtins.exec'"),
    "partial loader": (
        ("optim", "optimizer"),
        {"_target_": "torch.load", "_partial_": True, "f": UNPICKLE, "weights_only": False},
        "optim.optimizer._target_ is 'torch.load'",
    ),
    "loader inside a trusted target": (
        ("optim", "optimizer"),
        {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": {"_target_": "torch.load", "f": UNPICKLE}},
        "optim.optimizer.lr._target_ is 'torch.load'",
    ),
    "in a list": (
        ("trainer", "plugins"),
        [{"_target_": "lightning.pytorch.plugins.io.TorchCheckpointIO"}],
        "trainer.plugins[0]._target_",
    ),
    "not a string": (("module", "_target_"), {"nested": "os.system"}, "module._target_ is {'nested': 'os.system'}"),
    "model code": (("model", "trust_remote_code"), True, "sets model.trust_remote_code: true"),
}


def _with_payload(value, payload_file: str):
    if value == UNPICKLE:
        return payload_file
    if isinstance(value, dict):
        return {key: _with_payload(item, payload_file) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_payload(item, payload_file) for item in value]
    return value


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_resume_and_rerun_refuse_a_handed_over_config_that_would_run_code(workspace, tiny_run, tmp_path, payload):
    marker = tmp_path / "PWNED"
    payload_file = tmp_path / "payload.ckpt"
    torch.save(RunsACommand(marker), payload_file)
    keys, value, message = PAYLOADS[payload]
    handed = tmp_path / "handed"
    shutil.copytree(tiny_run, handed)
    config = yaml.safe_load((handed / "config.yaml").read_text())
    node = config
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = _with_payload(value, str(payload_file))
    (handed / "config.yaml").write_text(yaml.safe_dump(config))
    for option in ("rerun", "resume"):
        with pytest.raises(UntrustedConfig, match=re.escape(message)):
            train(compose_config("train", workspace, tmp_path / option, [f"{option}={handed}"]))
    assert not marker.exists()
    assert not (tmp_path / "rerun" / "config.yaml").exists()  # refused before anything was written
