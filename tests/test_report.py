"""Report files, console tables and judge comparisons, as a reader would open them."""

import json
import re

import numpy as np
import pytest
from rich.console import Console

from hakim.eval.metrics import metrics_by_subset
from hakim.eval.report import (
    compare_judges,
    print_summary,
    render_table,
    safe_name,
    verdict,
    write_comparison,
    write_report,
)

SUBSETS = [("boolq", "ms"), ("boolq", "en"), ("fib", "ms"), ("fib", "en")]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_RESAMPLES = 200


def judge_rows(skill: float, seed: int = 0, n: int = 160) -> list[dict]:
    """Rows of a judge whose P(1) leans towards the gold label by `skill`; every 23rd answer is unparsed."""
    rng = np.random.default_rng(seed)
    labels = np.random.default_rng(99).integers(0, 2, n)  # the same gold data for every judge
    p = np.clip(0.5 + skill * (labels - 0.5) + rng.normal(0, 0.2, n), 0.0, 1.0)
    return [
        {
            "id": f"ex-{i}",
            "source": SUBSETS[i % 4][0],
            "language": SUBSETS[i % 4][1],
            "passage": f"Petikan {i}: Kuala Lumpur ialah ibu negara Malaysia — teks panjang. " * 8,
            "claim": f"Dakwaan {i} tentang petikan itu?",
            "label": int(y),
            "prediction": None if i % 23 == 0 else int(q > 0.5),
            "probability": float(q),
            "raw_output": '{"jawapan": "mungkin"}' if i % 23 == 0 else '{"jawapan": "ya"}',
        }
        for i, (y, q) in enumerate(zip(labels, p, strict=True))
    ]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    rows = judge_rows(skill=0.6)
    summary = write_report(
        rows,
        out,
        "Hakim V2 on test",
        "hakim-v2",
        extra={"threshold": 0.5, "run_dir": "runs/x"},
        n_resamples=N_RESAMPLES,
    )
    return out, rows, summary


def test_report_writes_every_file_with_real_pngs(report):
    out, _, _ = report
    pngs = [
        "confusion_overall.png",
        "roc.png",
        "reliability.png",
        *(f"confusion_{source}-{language}.png" for source, language in SUBSETS),
    ]
    for name in ["predictions.jsonl", "metrics.json", "report.md", *pngs]:
        assert (out / name).is_file(), name
    for name in pngs:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name


def test_predictions_and_metrics_files_round_trip(report):
    out, rows, summary = report
    lines = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert "—" in lines[0]  # ensure_ascii=False keeps the text readable
    on_disk = json.loads((out / "metrics.json").read_text(encoding="utf-8"), parse_constant=pytest.fail)
    assert on_disk["judge"] == "hakim-v2" and on_disk["extra"] == {"threshold": 0.5, "run_dir": "runs/x"}
    assert list(on_disk["subsets"]) == ["overall", "boolq/en", "boolq/ms", "fib/en", "fib/ms"]
    assert on_disk["subsets"]["overall"]["n_unparsed"] == summary["subsets"]["overall"]["n_unparsed"] == 7
    assert on_disk["subsets"]["fib/ms"]["majority_baseline"]["balanced_accuracy"] == 0.5


def test_report_md_is_readable(report):
    out, _, summary = report
    text = (out / "report.md").read_text(encoding="utf-8")
    for subset in summary["subsets"]:
        assert f"| {subset} |" in text and f"**{subset}**" in text
    assert re.search(r"\| 0\.\d\d \[0\.\d\d, 0\.\d\d\] \|", text)  # a value with its 95% interval
    assert "majority (always" in text and "Unparsed" in text
    assert "Beats the majority baseline" in text
    assert "Most confident errors" in text and "Dakwaan" in text and "Petikan" in text
    assert "## Unparsed answers (7, counted as wrong" in text and "mungkin" in text
    assert "(confusion_boolq-ms.png)" in text and "(roc.png)" in text and "(reliability.png)" in text


def test_verdict_says_when_a_judge_is_no_better_than_the_majority(report):
    _, _, summary = report
    lucky = json.loads(json.dumps(summary["subsets"]["fib/ms"]))  # one subset: held to one constant
    lucky["balanced_accuracy"], lucky["intervals"]["balanced_accuracy"] = 0.53, [0.46, 0.60]
    assert verdict(lucky).startswith("Not distinguishable from always answering")
    lucky["balanced_accuracy"], lucky["intervals"]["balanced_accuracy"] = 0.40, [0.33, 0.47]
    assert verdict(lucky).startswith("Worse than always answering")
    assert f"{lucky['n_unparsed']} unparsed answer(s)" in verdict(lucky) and lucky["n_unparsed"] > 0
    only_yes = [
        {"id": str(i), "source": "boolq", "language": "ms", "label": 1, "prediction": 1, "probability": 0.9}
        for i in range(5)
    ]
    assert verdict(metrics_by_subset(only_yes, n_resamples=20)["overall"]).startswith("Only one gold class here")


def test_console_table_puts_the_baseline_beside_each_subset(report):
    _, _, summary = report
    table = render_table(summary["subsets"], title="hakim-v2")
    assert table.row_count == 2 * len(summary["subsets"])
    console = Console(record=True, width=200)
    print_summary(summary["subsets"], console=console)
    text = console.export_text()
    assert text.count("majority (always") == len(summary["subsets"]) - 1  # overall: each subset's own majority
    assert text.count("majority per subset") == 1
    assert "fib/ms" in text and "Beats the majority baseline" in text


def test_safe_name():
    assert safe_name("boolq/ms") == "boolq-ms"
    assert safe_name("a b/../c") == "a-b-..-c"


def test_compare_refuses_judges_scored_on_different_ids():
    a, b = judge_rows(0.6), judge_rows(0.3, seed=1)
    with pytest.raises(ValueError, match=r"not scored on the same ids: 2 missing from 'b' \(e.g. \['ex-0', 'ex-1'\]\)"):
        compare_judges({"a": a, "b": b[2:]}, n_resamples=N_RESAMPLES)
    b[0]["label"] = 1 - b[0]["label"]
    with pytest.raises(ValueError, match=r"disagree on the gold label or subset of 1 ids \(e.g. \['ex-0'\]\)"):
        compare_judges({"a": a, "b": b}, n_resamples=N_RESAMPLES)
    with pytest.raises(ValueError, match="at least two judges"):
        compare_judges({"a": a}, n_resamples=N_RESAMPLES)


def test_compare_joins_on_id_and_tests_every_pair(tmp_path):
    strong, weak, coin = judge_rows(0.8), judge_rows(0.2, seed=1), judge_rows(0.0, seed=2)
    weak.reverse()  # joining must be by id, not by position
    result = write_comparison({"strong": strong, "weak": weak, "coin": coin}, tmp_path, n_resamples=N_RESAMPLES)
    overall = result["subsets"]["overall"]
    assert [(t["judge_a"], t["judge_b"]) for t in overall["mcnemar"]] == [
        ("strong", "weak"),
        ("strong", "coin"),
        ("weak", "coin"),
    ]
    strong_vs_coin = overall["mcnemar"][1]
    assert strong_vs_coin["b"] > strong_vs_coin["c"] and strong_vs_coin["p_value"] < 0.01
    assert overall["judges"]["strong"]["accuracy"] > overall["judges"]["coin"]["accuracy"]
    assert set(result["subsets"]) == {"overall", "boolq/en", "boolq/ms", "fib/en", "fib/ms"}
    saved = json.loads((tmp_path / "comparison.json").read_text(encoding="utf-8"))
    assert saved["judges"] == ["strong", "weak", "coin"]
    md = (tmp_path / "comparison.md").read_text(encoding="utf-8")
    assert "## fib/ms" in md and "McNemar strong vs coin" in md and "majority (always" in md
    table, _ = compare_judges({"strong": strong, "coin": coin}, n_resamples=50)
    assert table.row_count == 5 * 3  # per subset: two judges and the majority baseline
