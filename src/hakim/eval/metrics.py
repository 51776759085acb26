"""Judge metrics that a constant or half-broken judge cannot game.

Inputs, everywhere in this module:
    labels         0/1 gold labels.
    predictions    1, 0 or None; None means the judge's answer could not be parsed.
    probabilities  P(label=1) per row, or None where the judge gave none (or None for all rows).

Conventions:
    - An unparsed answer is a wrong answer. It stays in n and counts against accuracy, recall and
      specificity (so balanced accuracy too), but it is never a predicted 1 or 0: it is not in
      precision's denominator nor in predicted_positive_rate's numerator.
    - F1 = 2TP / (2TP + FP + FN + unparsed gold-1 rows), the harmonic mean of that precision and recall.
    - MCC uses the 2x2 table in which every unparsed row is counted as the wrong class for its gold
      label (gold 1 -> false negative, gold 0 -> false positive): each one an error, as accuracy
      counts it, and the same table that recall and specificity imply.
    - A judge that gives one answer to every row (after that rule) has MCC 0: a constant carries no
      information about the label, and dropping such bootstrap resamples would bias MCC's interval
      upwards. MCC is None only when the gold labels hold one class. (torchmetrics is not used for MCC
      because its degenerate-table rule scores always-1 on a 70/30 set above 0: 0.28 on 10 rows.)
    - AUROC (torchmetrics), Brier and ECE use the rows that have a probability, parsed or not;
      n_scored says how many. ECE uses 10 equal-width bins [k/10, (k+1)/10), the last one closed
      at 1.0, computed here so that reliability_bins (the plot) shows exactly the bins behind it;
      torchmetrics would put P = 1.0 in an eleventh bin of its own.
    - A metric that is undefined (AUROC with one class, precision with no predicted 1s, ...) is None,
      never NaN and never 0.
    - Bootstrap intervals are percentile intervals over resampled rows; resamples where a metric is
      undefined are left out of that metric's interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from scipy.stats import binomtest
from torchmetrics.functional.classification import binary_auroc

ECE_BINS = 10
INTERVAL_METRICS = ("accuracy", "balanced_accuracy", "f1", "mcc", "auroc")
COUNT_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "specificity",
    "balanced_accuracy",
    "mcc",
    "unparsed_rate",
    "predicted_positive_rate",
)
PROBABILITY_METRICS = ("auroc", "brier", "ece")
ROW_FIELDS = ("id", "label", "prediction", "probability")
SUBSET_KEY = ("source", "language")


def _encode(labels, predictions, probabilities) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the inputs and return labels (int8), predictions (int8, -1 = unparsed), probabilities (NaN = none)."""
    n = len(labels)
    if n == 0:
        raise ValueError("no rows to score")
    if len(predictions) != n:
        raise ValueError(f"{n} labels but {len(predictions)} predictions")
    if probabilities is None:
        probabilities = [None] * n
    if len(probabilities) != n:
        raise ValueError(f"{n} labels but {len(probabilities)} probabilities")
    for i, (y, pred, p) in enumerate(zip(labels, predictions, probabilities, strict=True)):
        if y not in (0, 1):
            raise ValueError(f"row {i}: label must be 0 or 1, got {y!r}")
        if pred is not None and pred not in (0, 1):
            raise ValueError(f"row {i}: prediction must be 0, 1 or None (unparsed), got {pred!r}")
        if p is not None and not 0.0 <= p <= 1.0:
            raise ValueError(f"row {i}: probability must be in [0, 1] or None, got {p!r}")
    y = np.asarray(labels, dtype=np.int8)
    pred = np.array([-1 if x is None else x for x in predictions], dtype=np.int8)
    prob = np.array([np.nan if p is None else p for p in probabilities], dtype=np.float64)
    return y, pred, prob


def _counts(y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Confusion counts along the last axis; u1/u0 are unparsed rows with gold 1/0."""
    gold1 = y == 1
    return {
        "tp": (gold1 & (pred == 1)).sum(-1),
        "fn": (gold1 & (pred == 0)).sum(-1),
        "u1": (gold1 & (pred == -1)).sum(-1),
        "tn": (~gold1 & (pred == 0)).sum(-1),
        "fp": (~gold1 & (pred == 1)).sum(-1),
        "u0": (~gold1 & (pred == -1)).sum(-1),
    }


def _ratio(num, den) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


def _count_metrics(c: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every count-based metric, elementwise over any batch shape; NaN where undefined."""
    tp, fn, u1, tn, fp, u0 = (np.asarray(c[k], dtype=np.float64) for k in ("tp", "fn", "u1", "tn", "fp", "u0"))
    n, pos, neg = tp + fn + u1 + tn + fp + u0, tp + fn + u1, tn + fp + u0
    recall, specificity = _ratio(tp, pos), _ratio(tn, neg)
    wrong_pos, wrong_neg = fn + u1, fp + u0
    mcc_den = np.sqrt(pos * neg * (tp + wrong_neg) * (tn + wrong_pos))
    mcc = np.where(
        pos * neg == 0, np.nan, np.where(mcc_den == 0, 0.0, _ratio(tp * tn - wrong_neg * wrong_pos, mcc_den))
    )
    return {
        "accuracy": _ratio(tp + tn, n),
        "precision": _ratio(tp, tp + fp),
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn + u1),
        "specificity": specificity,
        "balanced_accuracy": (recall + specificity) / 2,
        "mcc": mcc,
        "unparsed_rate": _ratio(u1 + u0, n),
        "predicted_positive_rate": _ratio(tp + fp, n),
    }


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return np.nan
    return binary_auroc(torch.from_numpy(p), torch.from_numpy(y), validate_args=False).item()


def _bin_index(p: np.ndarray) -> np.ndarray:
    """Bin k holds [k/10, (k+1)/10), the last bin also 1.0; rows without a probability go to bin ECE_BINS."""
    index = np.minimum(np.floor(np.nan_to_num(p) * ECE_BINS), ECE_BINS - 1).astype(np.int64)
    return np.where(np.isnan(p), ECE_BINS, index)


def _binned_sums(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row count, sum of P(1) and sum of gold labels per bin, each of shape (batch, ECE_BINS)."""
    batch, width = y.shape[0], ECE_BINS + 1
    flat = (np.arange(batch)[:, None] * width + _bin_index(p)).ravel()
    return tuple(
        np.bincount(flat, weights=w.ravel(), minlength=batch * width).reshape(batch, width)[:, :ECE_BINS]
        for w in (np.ones_like(p), np.nan_to_num(p), y.astype(np.float64))
    )


def _probability_metrics(
    y: np.ndarray, p: np.ndarray, names: Iterable[str] = PROBABILITY_METRICS
) -> dict[str, np.ndarray]:
    """AUROC, Brier and ECE per row of the (batch, n) arrays, over the entries that have a probability."""
    scored = ~np.isnan(p)
    out = {"brier": _ratio(np.where(scored, (p - y) ** 2, 0.0).sum(1), scored.sum(1))}
    count, sum_p, sum_y = _binned_sums(y, p)
    # sum over bins of (n_bin / n) * |mean label - mean P(1)| is |sum label - sum P(1)| / n.
    out["ece"] = _ratio(np.abs(sum_y - sum_p).sum(1), count.sum(1))
    if "auroc" in names:
        # AUROC sorts each resample; a loop over torchmetrics calls costs ~0.1 ms per resample.
        out["auroc"] = np.array([_auroc(y[b][scored[b]], p[b][scored[b]]) for b in range(len(y))])
    return out


def reliability_bins(labels: Sequence[int], probabilities: Sequence[float | None]) -> list[dict]:
    """The ECE bins: range, row count, mean P(1) and share of gold 1s (None in an empty bin)."""
    y, _, p = _encode(labels, [None] * len(labels), probabilities)
    count, sum_p, sum_y = (a[0] for a in _binned_sums(y[None], p[None]))
    return [
        {
            "low": k / ECE_BINS,
            "high": (k + 1) / ECE_BINS,
            "n": int(count[k]),
            "mean_probability": _none_if_nan(_ratio(sum_p[k], count[k])),
            "positive_rate": _none_if_nan(_ratio(sum_y[k], count[k])),
        }
        for k in range(ECE_BINS)
    ]


def _none_if_nan(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def binary_metrics(
    labels: Sequence[int], predictions: Sequence[int | None], probabilities: Sequence[float | None] | None = None
) -> dict:
    """All metrics for one judge on one set of rows; see the module docstring for the conventions."""
    y, pred, prob = _encode(labels, predictions, probabilities)
    c = {k: int(v) for k, v in _counts(y, pred).items()}
    n = len(y)
    out = {
        "n": n,
        "n_unparsed": c["u1"] + c["u0"],
        "n_scored": int((~np.isnan(prob)).sum()),
        "positive_rate": (c["tp"] + c["fn"] + c["u1"]) / n,
    }
    out.update({k: _none_if_nan(v) for k, v in _count_metrics(c).items()})
    out.update({k: _none_if_nan(v[0]) for k, v in _probability_metrics(y[None], prob[None]).items()})
    out["confusion"] = {
        "gold_1": {"pred_1": c["tp"], "pred_0": c["fn"], "unparsed": c["u1"]},
        "gold_0": {"pred_1": c["fp"], "pred_0": c["tn"], "unparsed": c["u0"]},
    }
    return out


def bootstrap_intervals(
    labels: Sequence[int],
    predictions: Sequence[int | None],
    probabilities: Sequence[float | None] | None = None,
    metrics: Iterable[str] = INTERVAL_METRICS,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap interval per metric, resampling rows; None if no resample defines the metric."""
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in COUNT_METRICS + PROBABILITY_METRICS]
    if unknown:
        raise ValueError(f"no bootstrap for {unknown}; choose from {COUNT_METRICS + PROBABILITY_METRICS}")
    y, pred, prob = _encode(labels, predictions, probabilities)
    idx = np.random.default_rng(seed).integers(0, len(y), size=(n_resamples, len(y)), dtype=np.int32)
    samples = _count_metrics(_counts(y[idx], pred[idx]))
    if any(m in PROBABILITY_METRICS for m in metrics):
        samples.update(_probability_metrics(y[idx], prob[idx], metrics))
    tail = (1 - confidence) / 2 * 100
    out = {}
    for name in metrics:
        values = samples[name][~np.isnan(samples[name])]
        out[name] = tuple(float(v) for v in np.percentile(values, [tail, 100 - tail])) if len(values) else None
    return out


def constant_baseline(labels: Sequence[int], value: int, probability: float | None = None) -> dict:
    """Metrics of a judge that answers `value` to every row (with P(1) = `probability`, if given)."""
    n = len(labels)
    metrics = binary_metrics(labels, [value] * n, None if probability is None else [probability] * n)
    return {"constant": value, **metrics}


def majority_baseline(labels: Sequence[int], reference_labels: Sequence[int] | None = None) -> dict:
    """Always answer the majority class of `reference_labels` (default: `labels`), with P(1) = its base rate.

    The labels' own majority is the strongest constant judge on them; a training-split majority is
    the one a judge could have learnt without reading the passage. Ties go to 1.
    """
    reference = labels if reference_labels is None else reference_labels
    if len(reference) == 0:
        raise ValueError("majority baseline needs at least one reference label")
    base_rate = float(np.mean(reference))
    return constant_baseline(labels, int(base_rate >= 0.5), probability=base_rate)


def subset_majority_baseline(labels: Sequence[int], subsets: Sequence[str]) -> dict:
    """Answer each row with the majority class of its own subset (P(1) = that subset's base rate).

    The honest floor for a pooled "overall" row when subsets differ in balance (BoolQ mostly "yes",
    FIB mostly "no"): a judge that only recognises the task scores this much without reading anything.
    """
    rates = {
        s: float(np.mean([y for y, t in zip(labels, subsets, strict=True) if t == s])) for s in sorted(set(subsets))
    }
    predictions = [int(rates[s] >= 0.5) for s in subsets]
    metrics = binary_metrics(labels, predictions, [rates[s] for s in subsets])
    return {"constant": None, "per_subset": {s: int(rate >= 0.5) for s, rate in rates.items()}, **metrics}


def mcnemar(labels: Sequence[int], predictions_a: Sequence[int | None], predictions_b: Sequence[int | None]) -> dict:
    """Exact McNemar test; b = rows A got right and B got wrong, c = the reverse (unparsed is wrong)."""
    y, a, _ = _encode(labels, predictions_a, None)
    _, b_pred, _ = _encode(labels, predictions_b, None)
    right_a, right_b = a == y, b_pred == y
    b, c = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    p_value = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    return {"n": len(y), "b": b, "c": c, "p_value": float(p_value)}


def validate_rows(rows: Sequence[Mapping], key: Sequence[str] = ()) -> None:
    """Refuse rows that lack a scored field or repeat an id; the message names the row."""
    seen = set()
    for i, row in enumerate(rows):
        missing = [f for f in (*ROW_FIELDS, *key) if f not in row]
        if missing:
            raise ValueError(f"row {i} (id {row.get('id')!r}): missing field(s) {missing}")
        if row["id"] in seen:
            raise ValueError(f"row {i}: id {row['id']!r} appears twice; each example must be scored once")
        seen.add(row["id"])


def subset_name(row: Mapping, key: Sequence[str]) -> str:
    return "/".join(str(row[k]) for k in key)


def metrics_by_subset(
    rows: Sequence[Mapping],
    key: Sequence[str] = SUBSET_KEY,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict]:
    """{"overall": ..., "boolq/ms": ..., ...}: metrics, bootstrap "intervals" and a "majority_baseline" each.

    Each subset's baseline is the majority class of that subset's own gold labels: the strongest
    constant judge there, so beating it cannot come from learning the label balance. Over several
    subsets, "overall" is held to each row's own subset majority (knowing the task is not judging).
    """
    validate_rows(rows, key)
    groups: dict[str, list[Mapping]] = {"overall": list(rows)}
    for row in rows if key else ():
        groups.setdefault(subset_name(row, key), []).append(row)
    ordered = ["overall"] + sorted(g for g in groups if g != "overall")
    out = {}
    for name in ordered:
        labels = [r["label"] for r in groups[name]]
        predictions = [r["prediction"] for r in groups[name]]
        probabilities = [r["probability"] for r in groups[name]]
        out[name] = {
            **binary_metrics(labels, predictions, probabilities),
            "intervals": bootstrap_intervals(
                labels, predictions, probabilities, INTERVAL_METRICS, n_resamples, confidence, seed
            ),
            "majority_baseline": (
                subset_majority_baseline(labels, [subset_name(r, key) for r in groups[name]])
                if name == "overall" and len(groups) > 2
                else majority_baseline(labels)
            ),
        }
    return out
