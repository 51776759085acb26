"""Judge metrics: hand-computed values, the unparsed rule, baselines, bootstrap and McNemar."""

import json
import time

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    binary_calibration_error,
    binary_matthews_corrcoef,
    binary_precision,
    binary_recall,
    binary_specificity,
)

from hakim.eval.metrics import (
    COUNT_METRICS,
    INTERVAL_METRICS,
    PROBABILITY_METRICS,
    binary_metrics,
    bootstrap_intervals,
    constant_baseline,
    majority_baseline,
    mcnemar,
    metrics_by_subset,
    reliability_bins,
)


def random_judge(n=1000, seed=1, unparsed_every=37, missing_p_every=50):
    """A judge that is right ~75% of the time, with some unparsed answers and missing probabilities."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    p = np.clip(labels * 0.35 + rng.random(n) * 0.65, 0.0, 1.0)
    predictions = [None if i % unparsed_every == 0 else int(q > 0.5) for i, q in enumerate(p)]
    probabilities = [None if i % missing_p_every == 0 else float(q) for i, q in enumerate(p)]
    return labels.tolist(), predictions, probabilities


def test_count_metrics_match_hand_computation():
    labels = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    predictions = [1, 1, 1, 0, None, 0, 0, 0, 1, None]
    # gold 1: TP=3, FN=1, unparsed=1; gold 0: TN=3, FP=1, unparsed=1
    # accuracy = (3+3)/10 = 0.6; precision = 3/(3+1) = 0.75 (unparsed not in denominator)
    # recall = 3/5 = 0.6; specificity = 3/5 = 0.6; balanced accuracy = 0.6
    # F1 = 2*3 / (2*3 + 1 + 1 + 1) = 6/9 (= harmonic mean of 0.75 and 0.6)
    # MCC table with unparsed as the wrong class: TP=3, FN=2, TN=3, FP=2 -> (9-4)/sqrt(5*5*5*5) = 0.2
    m = binary_metrics(labels, predictions)
    assert m["n"] == 10 and m["n_unparsed"] == 2 and m["unparsed_rate"] == pytest.approx(0.2)
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.6)
    assert m["specificity"] == pytest.approx(0.6)
    assert m["balanced_accuracy"] == pytest.approx(0.6)
    assert m["f1"] == pytest.approx(6 / 9)
    assert m["mcc"] == pytest.approx(0.2)
    assert m["positive_rate"] == pytest.approx(0.5)
    assert m["predicted_positive_rate"] == pytest.approx(0.4)  # 4 predicted 1s out of all 10 rows
    assert m["confusion"] == {
        "gold_1": {"pred_1": 3, "pred_0": 1, "unparsed": 1},
        "gold_0": {"pred_1": 1, "pred_0": 3, "unparsed": 1},
    }


def test_probability_metrics_match_hand_computation():
    labels = [1, 1, 0, 0, 1]
    predictions = [1, 1, 1, 0, 1]
    probabilities = [0.9, 0.8, 0.85, 0.1, None]
    # scored rows: y = 1, 1, 0, 0 with p = 0.9, 0.8, 0.85, 0.1
    # AUROC: positive/negative pairs ranked right: (0.9>0.85), (0.9>0.1), (0.8>0.1); wrong: (0.8<0.85) -> 3/4
    # Brier: (0.1^2 + 0.2^2 + 0.85^2 + 0.1^2) / 4 = (0.01 + 0.04 + 0.7225 + 0.01) / 4 = 0.195625
    # ECE: bin [0.8, 0.9) has p 0.8, 0.85 with labels 1, 0 -> 2/4 * |0.5 - 0.825| = 0.1625
    #      bin [0.9, 1.0] has 0.9 with label 1 -> 1/4 * 0.1; bin [0.1, 0.2) has 0.1 with label 0 -> 1/4 * 0.1
    #      total 0.1625 + 0.025 + 0.025 = 0.2125
    m = binary_metrics(labels, predictions, probabilities)
    assert m["n_scored"] == 4
    assert m["auroc"] == pytest.approx(0.75)
    assert m["brier"] == pytest.approx(0.195625)
    assert m["ece"] == pytest.approx(0.2125)


def test_unparsed_on_every_positive_earns_no_recall():
    # If unparsed answers were mapped to 0 this judge would look like "always 0"; mapped to 1 it would
    # get recall 1.0. Counted as errors, it gets no recall and no precision from them.
    labels = [1, 1, 1, 0, 0, 0]
    m = binary_metrics(labels, [None, None, None, 0, 0, 1])
    assert m["recall"] == 0.0
    assert m["precision"] == 0.0  # 0 TP out of the 1 predicted positive
    assert m["accuracy"] == pytest.approx(2 / 6)
    assert m["specificity"] == pytest.approx(2 / 3)
    assert m["predicted_positive_rate"] == pytest.approx(1 / 6)


def test_unparsed_never_enters_precision_denominator():
    # One predicted 1 (right) and an unparsed gold-0 row: precision 1/1, but accuracy and specificity pay.
    m = binary_metrics([1, 1, 0, 0], [1, None, None, 0])
    assert m["precision"] == 1.0
    assert m["recall"] == 0.5 and m["specificity"] == 0.5 and m["accuracy"] == 0.5
    assert m["mcc"] == pytest.approx(0.0)  # TP=1, FN=1, TN=1, FP=1 -> (1-1)/... = 0


def test_always_one_on_70_30_set_has_high_f1_but_no_skill():
    labels = [1] * 70 + [0] * 30
    m = binary_metrics(labels, [1] * 100)
    assert m["f1"] == pytest.approx(2 * 70 / (2 * 70 + 30))  # 0.82: why F1 alone misleads
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["mcc"] == 0.0
    # torchmetrics' degenerate-table rule would have scored this judge above zero
    assert binary_matthews_corrcoef(torch.ones(100, dtype=torch.long), torch.tensor(labels)).item() > 0.05


def test_undefined_metrics_are_none_not_nan_or_zero():
    one_class = binary_metrics([1, 1, 1], [1, 0, None], [0.9, 0.2, 0.5])
    assert one_class["auroc"] is None
    assert one_class["specificity"] is None and one_class["balanced_accuracy"] is None and one_class["mcc"] is None
    no_predicted_one = binary_metrics([1, 0], [0, 0])
    assert no_predicted_one["precision"] is None
    no_probabilities = binary_metrics([1, 0], [1, 0])
    assert no_probabilities["n_scored"] == 0
    assert no_probabilities["auroc"] is None and no_probabilities["brier"] is None and no_probabilities["ece"] is None
    json.dumps([one_class, no_predicted_one, no_probabilities], allow_nan=False)


@pytest.mark.parametrize(
    "labels, predictions, probabilities, message",
    [
        ([1, 2], [1, 0], None, "row 1: label"),
        ([1, 0], [1, 0.5], None, "row 1: prediction"),
        ([1, 0], [1, 0], [0.5, float("nan")], "row 1: probability"),
        ([1, 0], [1], None, "2 labels but 1 predictions"),
        ([], [], None, "no rows"),
    ],
)
def test_bad_inputs_are_refused_with_the_row(labels, predictions, probabilities, message):
    with pytest.raises(ValueError, match=message):
        binary_metrics(labels, predictions, probabilities)


def test_agrees_with_torchmetrics_under_the_unparsed_rule():
    labels, predictions, probabilities = random_judge()
    m = binary_metrics(labels, predictions, probabilities)
    y = torch.tensor(labels)
    worst_case = torch.tensor([1 - t if p is None else p for t, p in zip(labels, predictions, strict=True)])
    assert m["accuracy"] == pytest.approx(binary_accuracy(worst_case, y).item())
    assert m["recall"] == pytest.approx(binary_recall(worst_case, y).item())
    assert m["specificity"] == pytest.approx(binary_specificity(worst_case, y).item())
    assert m["mcc"] == pytest.approx(binary_matthews_corrcoef(worst_case, y).item(), abs=1e-6)
    parsed = [i for i, p in enumerate(predictions) if p is not None]
    assert m["precision"] == pytest.approx(
        binary_precision(torch.tensor([predictions[i] for i in parsed]), y[parsed]).item()
    )
    scored = [i for i, p in enumerate(probabilities) if p is not None]
    p = torch.tensor([probabilities[i] for i in scored], dtype=torch.float64)
    assert m["auroc"] == pytest.approx(binary_auroc(p, y[scored]).item())
    assert m["ece"] == pytest.approx(binary_calibration_error(p, y[scored], n_bins=10).item())


def test_reliability_bins_are_the_ece_bins():
    labels, _, probabilities = random_judge(n=300)
    bins = reliability_bins(labels, probabilities)
    n_scored = sum(b["n"] for b in bins)
    gap = sum(b["n"] / n_scored * abs(b["positive_rate"] - b["mean_probability"]) for b in bins if b["n"])
    assert gap == pytest.approx(binary_metrics(labels, [None] * len(labels), probabilities)["ece"])
    edges = reliability_bins([1, 0, 1], [1.0, 0.3, None])
    assert edges[9]["n"] == 1 and edges[3]["n"] == 1 and sum(b["n"] for b in edges) == 2


def test_bootstrap_contains_point_estimate_and_is_deterministic():
    labels, predictions, probabilities = random_judge()
    names = COUNT_METRICS + PROBABILITY_METRICS
    start = time.perf_counter()
    intervals = bootstrap_intervals(labels, predictions, probabilities, names, n_resamples=1000, seed=3)
    assert time.perf_counter() - start < 5.0
    point = binary_metrics(labels, predictions, probabilities)
    for name in names:
        low, high = intervals[name]
        assert low <= point[name] <= high, name
        assert high - low < 0.2, name  # 1,000 rows pin these down to a few points
    assert bootstrap_intervals(labels, predictions, probabilities, names, n_resamples=1000, seed=3) == intervals
    assert bootstrap_intervals(labels, predictions, probabilities, names, n_resamples=1000, seed=4) != intervals


def test_bootstrap_of_a_constant_judge_and_undefined_metrics():
    labels = [1] * 70 + [0] * 30
    intervals = bootstrap_intervals(labels, [1] * 100, None, ("balanced_accuracy", "mcc", "auroc"), n_resamples=200)
    assert intervals["balanced_accuracy"] == (0.5, 0.5)
    assert intervals["mcc"] == (0.0, 0.0)
    assert intervals["auroc"] is None  # no probabilities at all
    with pytest.raises(ValueError, match="no bootstrap for"):
        bootstrap_intervals(labels, [1] * 100, None, ("roc",))


def test_baselines():
    labels = [1] * 70 + [0] * 30
    always_one = constant_baseline(labels, 1)
    assert always_one["constant"] == 1 and always_one["balanced_accuracy"] == 0.5 and always_one["mcc"] == 0.0
    majority = majority_baseline(labels)
    assert majority["constant"] == 1 and majority["accuracy"] == pytest.approx(0.7)
    # P(1) = base rate 0.7 everywhere: Brier = 0.7*0.3^2 + 0.3*0.7^2 = 0.21, ties give AUROC 0.5
    assert majority["brier"] == pytest.approx(0.21) and majority["auroc"] == pytest.approx(0.5)
    from_train = majority_baseline(labels, reference_labels=[0, 0, 1])
    assert from_train["constant"] == 0 and from_train["accuracy"] == pytest.approx(0.3)


def test_mcnemar_matches_hand_binomial():
    labels = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    a = [1, 1, 1, 1, 1, 0, 0, 0, 1, 1]  # right on rows 0-7
    b = [1, None, 0, 0, 0, 0, 0, 1, 1, 0]  # right on rows 0, 5, 6, 9; row 1 unparsed counts as wrong
    # b = A right & B wrong: rows 1, 2, 3, 4, 7 -> 5; c = A wrong & B right: row 9 -> 1
    # exact two-sided p = 2 * P(X <= 1), X ~ Binomial(6, 0.5) = 2 * (1 + 6) / 64 = 0.21875
    result = mcnemar(labels, a, b)
    assert (result["b"], result["c"], result["n"]) == (5, 1, 10)
    assert result["p_value"] == pytest.approx(0.21875)
    assert mcnemar(labels, a, a)["p_value"] == 1.0


def make_rows(n_per_subset=40, seed=0):
    labels, predictions, probabilities = random_judge(n=4 * n_per_subset, seed=seed)
    subsets = [("boolq", "ms"), ("boolq", "en"), ("fib", "ms"), ("fib", "en")]
    return [
        {
            "id": f"r{i}",
            "source": subsets[i % 4][0],
            "language": subsets[i % 4][1],
            "label": y,
            "prediction": p,
            "probability": q,
        }
        for i, (y, p, q) in enumerate(zip(labels, predictions, probabilities, strict=True))
    ]


def test_metrics_by_subset_orders_subsets_and_adds_intervals_and_baseline():
    rows = make_rows()
    result = metrics_by_subset(rows, n_resamples=100)
    assert list(result) == ["overall", "boolq/en", "boolq/ms", "fib/en", "fib/ms"]
    assert result["overall"]["n"] == 160 and sum(result[s]["n"] for s in list(result)[1:]) == 160
    for name, m in result.items():
        assert set(m["intervals"]) == set(INTERVAL_METRICS)
        if name != "overall":
            assert m["majority_baseline"]["balanced_accuracy"] == 0.5
    boolq_ms = [r for r in rows if r["source"] == "boolq" and r["language"] == "ms"]
    assert (
        result["boolq/ms"]["accuracy"]
        == binary_metrics(
            [r["label"] for r in boolq_ms], [r["prediction"] for r in boolq_ms], [r["probability"] for r in boolq_ms]
        )["accuracy"]
    )


def test_metrics_by_subset_refuses_missing_fields_and_repeated_ids():
    rows = make_rows(n_per_subset=2)
    del rows[3]["prediction"]
    with pytest.raises(ValueError, match=r"row 3 \(id 'r3'\): missing field\(s\) \['prediction'\]"):
        metrics_by_subset(rows)
    rows = make_rows(n_per_subset=2)
    rows[5]["id"] = "r0"
    with pytest.raises(ValueError, match="id 'r0' appears twice"):
        metrics_by_subset(rows)


def test_overall_is_held_to_each_subsets_own_majority_not_one_constant():
    # BoolQ mostly yes, FIB mostly no: a "judge" that only recognises the task answers its majority
    rows = [
        {"id": f"b{i}", "source": "boolq", "language": "ms", "label": int(i < 8), "prediction": 1, "probability": 0.7}
        for i in range(10)
    ]
    rows += [
        {"id": f"f{i}", "source": "fib", "language": "en", "label": int(i < 2), "prediction": 0, "probability": 0.2}
        for i in range(10)
    ]
    result = metrics_by_subset(rows, n_resamples=200)
    overall = result["overall"]
    assert overall["balanced_accuracy"] == pytest.approx(0.8)  # far above one constant's 0.5 ...
    baseline = overall["majority_baseline"]
    assert baseline["per_subset"] == {"boolq/ms": 1, "fib/en": 0}
    assert baseline["balanced_accuracy"] == pytest.approx(
        overall["balanced_accuracy"]
    )  # ... and exactly the task prior
    from hakim.eval.report import verdict

    assert verdict(overall).startswith("Not distinguishable from answering each subset's majority class")
    assert result["boolq/ms"]["majority_baseline"]["constant"] == 1
