"""The frozen-feature probe: fits what is separable, not what is noise, and resumes from its shards."""

import json

import torch

from conftest import ROOT
from hakim.cli.probe import main
from hakim.data.dataset_io import read_split
from hakim.eval.probe import fit_linear_probe, run_probe, seeded_order
from hakim.models.loading import ModelSpec
from hakim.prompting.style import PromptStyle


def _auroc(labels, scores) -> float:
    labels, scores = torch.tensor(labels), torch.tensor(scores)
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float((pos[:, None] > neg[None, :]).float().mean())


def test_linear_probe_separates_a_readable_label_and_not_noise():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(400, 16, generator=generator)
    readable = (features[:, 3] + 0.3 * torch.randn(400, generator=generator) > 0.8).long().tolist()  # ~25% positive
    noise = torch.randint(0, 2, (400,), generator=generator).tolist()
    held_out = torch.randn(400, 16, generator=generator)
    held_out_labels = (held_out[:, 3] > 0.8).long().tolist()
    probe = fit_linear_probe(features, readable, l2=1e-3)
    assert _auroc(held_out_labels, probe.probabilities(held_out).tolist()) > 0.95
    # class balance: a minority class of 25% still gets P(1) > 0.5 where it is likely
    assert probe.probabilities(held_out)[torch.tensor(held_out_labels) == 1].mean() > 0.5
    noise_probe = fit_linear_probe(features, noise, l2=1e-1)
    assert abs(_auroc(held_out_labels, noise_probe.probabilities(held_out).tolist()) - 0.5) < 0.15


def test_probe_runs_on_a_prepared_dataset_and_resumes_from_its_feature_shards(tiny_model_dir, sample_dataset, tmp_path):
    spec = ModelSpec(name="tiny", source="local", path=str(tiny_model_dir), quantization=None)
    style = PromptStyle("v2", "ms")
    first = run_probe(spec, sample_dataset, tmp_path, style, max_length=192, log=lambda _: None)
    assert first["rows"]["train"] == len(read_split(sample_dataset, "train"))
    assert {"overall", "boolq/ms", "fib/ms"} <= set(first["eval"])
    assert 0 <= first["chosen"]["layer"] < len({t["layer"] for t in first["trials"]})
    assert first["learning_curve"][-1]["train_rows"] == first["rows"]["train"]
    shards = sorted((tmp_path / "features" / "train").glob("*.pt"))
    assert shards and not list((tmp_path / "features").rglob("*.partial"))

    shards[-1].unlink()  # as if killed before the last shard was written
    logged = []
    again = run_probe(spec, sample_dataset, tmp_path, style, max_length=192, log=logged.append)
    assert logged[1:] == [f"  train: {first['rows']['train']}/{first['rows']['train']} rows"]  # only the lost shard
    assert again["chosen"] == first["chosen"] and again["eval"] == first["eval"]
    assert json.loads((tmp_path / "probe.json").read_text())["chosen"] == first["chosen"]

    fewer = run_probe(
        spec,
        sample_dataset,
        tmp_path,
        style,
        max_length=192,
        max_train_rows=first["rows"]["train"] - 1,
        log=logged.append,
        batch_size=4,
    )  # the last shard now holds other rows: recomputed, not reused
    assert fewer["rows"]["train"] == first["rows"]["train"] - 1
    assert any("computing it again" in line for line in logged)


def test_claim_only_probe_from_the_command_line(tiny_model_dir, sample_dataset, tmp_path, capsys):
    model_yaml = tmp_path / "tiny.yaml"
    model_yaml.write_text(f"name: tiny\nsource: local\npath: {tiny_model_dir}\nquantization: nf4\n")
    main(
        [
            "--dataset-dir",
            str(sample_dataset),
            "--model",
            str(model_yaml),
            "--out",
            str(tmp_path / "out"),
            "--input",
            "claim_only",
            "--compute-dtype",
            "float32",
            "--max-length",
            "192",
            "--style",
            str(ROOT / "conf" / "style" / "v2.yaml"),
            "--claim-position",
            "before",
        ]
    )
    result = json.loads((tmp_path / "out" / "probe.json").read_text())
    assert result["input"] == "claim_only" and result["quantization"] is None
    assert result["style"] == {**PromptStyle().to_dict(), "claim_position": "before"}
    assert "linear probe on frozen tiny (claim_only input)" in capsys.readouterr().out


def test_row_samples_are_nested_seeded_and_drawn_across_sources():
    blocked = ["boolq"] * 600 + ["fib"] * 150  # how stored splits list their rows
    order = seeded_order(len(blocked))
    assert sorted(order) == list(range(len(blocked))) and seeded_order(len(blocked)) == order
    small, large = set(order[:100]), set(order[:400])
    assert small <= large
    assert {blocked[i] for i in small} == {"boolq", "fib"}
    assert 0.1 < sum(blocked[i] == "fib" for i in large) / 400 < 0.3
