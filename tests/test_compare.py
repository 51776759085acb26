"""Comparing finished evaluations (`evaluate.py compare=[...]`) and the constant baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import compose_config, run_entry_point
from hakim.data.dataset_io import read_split
from hakim.eval.comparison import compare
from hakim.eval.evaluation import evaluate
from hakim.eval.report import write_report

N = 20
LABELS = [i % 2 for i in range(N)]
# judge-a is wrong on 2 rows; judge-b on 6 others and unparsed on one more: b = 7, c = 2.
WRONG_A = {0, 1}
WRONG_B = {2, 3, 4, 5, 6, 7}
UNPARSED_B = {8}
# Exact two-sided binomial p for 7 of 9: 2 * (C(9,7) + C(9,8) + C(9,9)) / 2**9.
P_VALUE = 2 * (36 + 9 + 1) / 512


def rows(wrong: set[int], unparsed: set[int] = frozenset(), ids=None) -> list[dict]:
    ids = ids or [f"ex-{i}" for i in range(N)]
    return [
        {
            "id": ids[i],
            "source": "boolq" if i < N // 2 else "fib",
            "language": "ms",
            "label": y,
            "prediction": None if i in unparsed else (1 - y if i in wrong else y),
            "probability": None if i in unparsed else (0.8 if (i in wrong) != (y == 1) else 0.2),
        }
        for i, y in enumerate(LABELS)
    ]


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evaluations")
    written = {
        "a": rows(WRONG_A),
        "b": rows(WRONG_B, UNPARSED_B),
        "other_ids": rows(WRONG_A, ids=[f"ex-{i}" for i in range(N - 1)] + ["elsewhere"]),
    }
    for name, judge_rows in written.items():
        write_report(judge_rows, root / name, "synthetic", f"judge-{name}", n_resamples=50)
    return {name: root / name for name in written}


def test_compare_writes_side_by_side_metrics_and_mcnemar(workspace, evaluations, tmp_path, capsys):
    out = tmp_path / "comparison"
    cfg = compose_config("evaluate", workspace, out, [f"compare=[{evaluations['a']},{evaluations['b']}]"])
    result = compare(cfg)

    on_disk = json.loads((out / "comparison.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    assert on_disk["judges"] == ["judge-a", "judge-b"]
    overall = on_disk["subsets"]["overall"]
    assert overall["mcnemar"] == [
        {"judge_a": "judge-a", "judge_b": "judge-b", "n": N, "b": 7, "c": 2, "p_value": pytest.approx(P_VALUE)}
    ]
    assert overall["judges"]["judge-a"]["accuracy"] == 0.9 and overall["judges"]["judge-b"]["n_unparsed"] == 1
    assert set(on_disk["subsets"]) == {"overall", "boolq/ms", "fib/ms"}
    markdown = (out / "comparison.md").read_text()
    assert (
        f"McNemar judge-a vs judge-b: 7 rows only judge-a got right, 2 only judge-b got right, exact p = {P_VALUE:.3g}"
        in markdown
    )
    assert "Judge comparison" in capsys.readouterr().out


def test_compare_from_the_command_line(workspace, evaluations):
    result = run_entry_point(
        "evaluate.py", workspace, f"compare=[{evaluations['a']},{evaluations['b']}]", "hydra.run.dir=runs/compare_cli"
    )
    out = workspace / "runs" / "compare_cli"
    assert json.loads((out / "comparison.json").read_text())["subsets"]["fib/ms"]["mcnemar"][0]["judge_b"] == "judge-b"
    assert "McNemar judge-a vs judge-b" in (out / "comparison.md").read_text()
    assert "Judge comparison" in result.stdout and str(out) in result.stdout


def test_compare_refuses_different_ids_and_non_evaluation_directories(workspace, evaluations, tmp_path):
    mismatched = compose_config(
        "evaluate", workspace, tmp_path / "x", [f"compare=[{evaluations['a']},{evaluations['other_ids']}]"]
    )
    with pytest.raises(ValueError, match="not scored on the same ids.*elsewhere"):
        compare(mismatched)
    missing = compose_config("evaluate", workspace, tmp_path / "y", [f"compare=[{evaluations['a']},{tmp_path}]"])
    with pytest.raises(FileNotFoundError, match="no predictions.jsonl"):
        compare(missing)
    assert not (tmp_path / "x" / "comparison.json").exists()


def test_the_same_judge_twice_is_told_apart_by_its_directory(workspace, evaluations, tmp_path):
    copy = tmp_path / "rerun"
    copy.mkdir()
    for name in ("predictions.jsonl", "metrics.json"):
        (copy / name).write_text((evaluations["a"] / name).read_text())
    cfg = compose_config("evaluate", workspace, tmp_path / "out", [f"compare=[{evaluations['a']},{copy}]"])
    assert compare(cfg)["judges"] == ["judge-a [a]", "judge-a [rerun]"]


@pytest.mark.parametrize("judge", ["majority", "always_one"])
def test_constant_baselines_score_balanced_accuracy_one_half(workspace, sample_dataset, tmp_path, judge):
    cfg = compose_config("evaluate", workspace, tmp_path / judge, [f"judge={judge}", f"dataset_dir={sample_dataset}"])
    summary = evaluate(cfg)

    overall = summary["subsets"]["overall"]
    assert overall["balanced_accuracy"] == 0.5 and overall["n_unparsed"] == 0
    train = [r.label for r in read_split(sample_dataset, "train")]
    expected = (int(sum(train) / len(train) >= 0.5), sum(train) / len(train)) if judge == "majority" else (1, 1.0)
    predictions = [json.loads(line) for line in (tmp_path / judge / "predictions.jsonl").read_text().splitlines()]
    assert {(r["prediction"], r["probability"]) for r in predictions} == {expected}
    assert summary["extra"]["judge"] == judge
