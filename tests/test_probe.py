"""The frozen-feature probe: fits what is separable, not what is noise, and resumes from its shards."""

import json

import pytest
import torch

from conftest import ROOT
from hakim.cli.probe import main
from hakim.data.dataset_io import read_split
from hakim.eval.probe import fit_linear_probe, run_probe, seeded_order
from hakim.models.loading import ModelSpec
from hakim.prompting.chunks import Chunking
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

    logged.clear()  # the same rows read otherwise (the claim alone) into the same directory: nothing reused
    claim_only = run_probe(
        spec, sample_dataset, tmp_path, style, max_length=192, input_kind="claim_only", log=logged.append
    )
    recomputed = [line for line in logged if "computing it again" in line]
    assert len(recomputed) == len(list((tmp_path / "features").rglob("*.pt")))
    assert claim_only["eval"] != first["eval"]


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
            "--chunk-tokens",
            "64",
        ]
    )
    result = json.loads((tmp_path / "out" / "probe.json").read_text())
    assert result["input"] == "claim_only" and result["quantization"] is None
    assert result["chunking"] == {"chunk_tokens": 64, "split_claim": False}  # no passage: one empty chunk per row
    assert result["style"] == {**PromptStyle().to_dict(), "claim_position": "before"}
    assert "linear probe on frozen tiny (claim_only input)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(
            [
                "--dataset-dir",
                str(sample_dataset),
                "--model",
                str(model_yaml),
                "--out",
                str(tmp_path / "x"),
                "--split-claim",
            ]
        )
    assert "--split-claim judges each claim sentence against the passage's chunks" in capsys.readouterr().err


def test_row_samples_are_nested_seeded_and_drawn_across_sources():
    blocked = ["boolq"] * 600 + ["fib"] * 150  # how stored splits list their rows
    order = seeded_order(len(blocked))
    assert sorted(order) == list(range(len(blocked))) and seeded_order(len(blocked)) == order
    small, large = set(order[:100]), set(order[:400])
    assert small <= large
    assert {blocked[i] for i in small} == {"boolq", "fib"}
    assert 0.1 < sum(blocked[i] == "fib" for i in large) / 400 < 0.3


def write_marker_dataset(root):
    """Short train rows (the supporting sentence, when there, well inside max_length); validation and evaluation
    rows whose support, when there, is past max_length, in their last sentence."""
    from hakim.data.dataset_io import write_dataset
    from hakim.data.records import JudgeRecord
    from marker_model import CLAIM, FILLER, SUPPORT

    def record(split, number, passage, label):
        return JudgeRecord(
            id=f"{split}-{number}",
            source="boolq",
            language="ms",
            passage=passage,
            claim=CLAIM,
            label=label,
            doc_id=f"{split}-{number}",
            split="test" if split == "eval" else split,
        )

    train = [
        record("train", n, f"Sungai nombor {n} mengalir ke laut." + (f" {SUPPORT}" if n % 2 else ""), n % 2)
        for n in range(24)
    ]
    held_out = {
        split: [record(split, n, f"{FILLER} {SUPPORT}" if n % 2 else FILLER, n % 2) for n in range(6)]
        for split in ("validation", "eval")
    }
    return write_dataset({"train": train, **held_out}, root, {})


def test_a_probe_scored_as_a_chunked_judge_finds_evidence_past_max_length(marker_dir, tmp_path):
    from marker_model import MARKER_MAX_LENGTH

    dataset = write_marker_dataset(tmp_path / "data")
    spec = ModelSpec(name="marker", source="local", path=str(marker_dir), quantization=None)
    style = PromptStyle()
    cut = run_probe(spec, dataset, tmp_path / "cut", style, MARKER_MAX_LENGTH, log=lambda _: None)
    chunked = run_probe(
        spec, dataset, tmp_path / "chunks", style, MARKER_MAX_LENGTH, log=lambda _: None, chunking=Chunking(64)
    )
    assert chunked["eval"]["overall"]["auroc"] == 1.0 and chunked["eval"]["overall"]["accuracy"] == 1.0
    assert cut["eval"]["overall"]["auroc"] == 0.5  # cut at max_length, every row reads the same: no evidence left
    assert chunked["chosen"]["val_mean_subset_auroc"] == 1.0 and chunked["chunking"] == {
        "chunk_tokens": 64,
        "split_claim": False,
    }
    # train is read whole, as a judge is trained; the held-out splits as chunks, cached apart from whole readings
    assert sorted(path.name for path in (tmp_path / "chunks" / "features").iterdir()) == [
        "eval-chunks64",
        "train",
        "validation-chunks64",
    ]
    assert len(torch.load(tmp_path / "chunks" / "features" / "eval-chunks64" / "0000000.pt")["ids"]) > 6 * 5
