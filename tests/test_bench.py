"""The benchmark scripts in bench/ still run, in their smallest settings (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

BENCH = ROOT / "bench"


def run_bench(script: str, *arguments: str, timeout: int = 120) -> str:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


@pytest.mark.slow
def test_train_throughput_compares_both_sides_on_synthetic_rows(tmp_path):
    pytest.importorskip("trl")
    output = run_bench(
        "train_throughput.py",
        "--model",
        "tiny_mistral",
        "--examples",
        "4",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--max-length",
        "256",
        "--repeats",
        "1",
        "--synthetic",
        "--json",
        str(tmp_path / "train.json"),
    )
    assert "synthetic from length_histogram.json" in output
    assert output.strip().splitlines()[-1].startswith("| hakim/trl")
    summary = json.loads((tmp_path / "train.json").read_text())
    for side in ("hakim", "trl"):
        run = summary["runs"][side][0]
        assert run["real_tokens"] > 0 and run["completion_tokens"] > 0 and run["peak_rss_mb"] > 0
    assert summary["ratios"]["tokens_per_s"] > 0


@pytest.mark.slow
def test_eval_throughput_counts_unparsed_answers(tmp_path):
    output = run_bench(
        "eval_throughput.py",
        "--model",
        "tiny_mistral",
        "--examples",
        "3",
        "--repeats",
        "1",
        "--max-new-tokens",
        "4",
        "--max-length",
        "256",
        "--synthetic",
        "--json",
        str(tmp_path / "eval.json"),
    )
    assert "score/generate" in output
    summary = json.loads((tmp_path / "eval.json").read_text())
    assert summary["score"]["unparsed"] == 0
    assert 0 <= summary["generate"]["unparsed_strict"] <= 3


@pytest.mark.slow
def test_gpu_qlora_runs_its_cpu_path_at_tiny_scale(tmp_path):
    output = run_bench(
        "gpu_qlora.py",
        "--scale",
        "tiny",
        "--batch-sizes",
        "1",
        "--seq-len",
        "32",
        "--steps",
        "1",
        "--checkpointing",
        "on",
        "--json",
        str(tmp_path / "gpu.json"),
    )
    results = json.loads((tmp_path / "gpu.json").read_text())["results"]
    assert {row["loss_path"] for row in results} >= {"hakim", "hf"}
    assert all(row["tokens_per_s"] > 0 for row in results)
    assert "| on " in output


def test_gpu_qlora_at_7b_scale_explains_itself_without_a_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the 7B run is a real measurement, not a smoke test")
    output = run_bench("gpu_qlora.py")
    assert "no CUDA GPU" in output


@pytest.mark.slow
def test_serve_throughput_measures_both_sides_and_the_servers_memory(tmp_path):
    output = run_bench(
        "serve_throughput.py",
        "--model",
        "tiny_mistral",
        "--requests",
        "4",
        "--memory-requests",
        "8",
        "--repeats",
        "1",
        "--max-length",
        "256",
        "--synthetic",
        "--json",
        str(tmp_path / "serve.json"),
        timeout=300,
    )
    assert "| **batched/one-at-a-time** | 32" in output and "MiB after 8 more requests" in output
    summary = json.loads((tmp_path / "serve.json").read_text())
    assert set(summary["ratios_rows_per_s"]) == {"1", "8", "32"} and all(
        r > 0 for r in summary["ratios_rows_per_s"].values()
    )
    for side in ("batched", "one-at-a-time"):
        for level in summary["runs"][side][0]["levels"].values():
            assert level["rows_per_s"] > 0 and level["p99_ms"] >= level["p50_ms"] > 0
    assert summary["runs"]["one-at-a-time"][0]["largest_batch"] == 1  # the baseline never batches
    assert summary["runs"]["batched"][0]["rss_after_mb"] > 0
