"""Turn scored judge rows into what a person reads: metrics.json, report.md, plots, console tables, comparisons."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table
from torchmetrics.functional.classification import binary_roc

from hakim.eval.metrics import SUBSET_KEY, mcnemar, metrics_by_subset, reliability_bins, subset_name, validate_rows
from hakim.file_writes import jsonl, write_atomically

PREDICTIONS_FILE = "predictions.jsonl"  # one row per judged row: gold, label, P(1), reasoning, errors

# (column title, metric name); metrics with a bootstrap interval are shown with it.
REPORT_COLUMNS = (
    ("n", "n"),
    ("Accuracy", "accuracy"),
    ("Bal. acc.", "balanced_accuracy"),
    ("Precision", "precision"),
    ("Recall", "recall"),
    ("F1", "f1"),
    ("MCC", "mcc"),
    ("AUROC", "auroc"),
    ("ECE", "ece"),
    ("Unparsed", "unparsed_rate"),
)
CONSOLE_COLUMNS = tuple(c for c in REPORT_COLUMNS if c[1] not in ("precision", "recall", "ece"))
N_WORST = 5
EXCERPT_CHARS = 300


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _cell(m: Mapping, name: str) -> str:
    if name == "n":
        return str(m["n"])
    if name == "unparsed_rate":
        return f"{m[name]:.1%}"
    interval = m.get("intervals", {}).get(name)
    if interval is None or m[name] is None:
        return _fmt(m[name])
    return f"{_fmt(m[name])} [{_fmt(interval[0])}, {_fmt(interval[1])}]"


def _baseline_label(baseline: Mapping) -> str:
    if baseline.get("per_subset"):
        return "majority per subset"
    return f"majority (always {baseline['constant']})"


def _baseline_words(baseline: Mapping) -> str:
    if baseline.get("per_subset"):
        return "answering each subset's majority class"
    return f"always answering {baseline['constant']}"


def verdict(m: Mapping) -> str:
    """One plain sentence: does the judge's balanced-accuracy interval clear the majority baseline?"""
    base = m["majority_baseline"]
    always = _baseline_words(base)
    if m["balanced_accuracy"] is None:
        return (
            f"Only one gold class here, so balanced accuracy is undefined; accuracy {_fmt(m['accuracy'])} "
            f"vs {_fmt(base['accuracy'])} for {always}."
        )
    low, high = m["intervals"]["balanced_accuracy"]
    shown = _cell(m, "balanced_accuracy")
    if low > base["balanced_accuracy"]:
        text = f"Beats the majority baseline: balanced accuracy {shown} clears {_fmt(base['balanced_accuracy'])}."
    elif high < base["balanced_accuracy"]:
        text = f"Worse than {always}: balanced accuracy {shown} is below {_fmt(base['balanced_accuracy'])}."
    else:
        text = (
            f"Not distinguishable from {always}: balanced accuracy {shown} includes {_fmt(base['balanced_accuracy'])}."
        )
    text += f" Accuracy {_fmt(m['accuracy'])} vs {_fmt(base['accuracy'])} for {always}."
    if m["n_unparsed"]:
        text += f" {m['n_unparsed']} unparsed answer(s) ({m['unparsed_rate']:.1%}) counted as wrong."
    return text


def render_table(by_subset: Mapping[str, Mapping], title: str | None = None) -> Table:
    """One row per subset for the judge, with its majority baseline on the row below."""
    table = Table(title=title)
    for header in ("Subset", "Judge", *(c[0] for c in CONSOLE_COLUMNS)):
        table.add_column(header)
    for name, m in by_subset.items():
        table.add_row(name, "judge", *(_cell(m, c) for _, c in CONSOLE_COLUMNS))
        table.add_row(
            "",
            _baseline_label(m["majority_baseline"]),
            *(_cell(m["majority_baseline"], c) for _, c in CONSOLE_COLUMNS),
            style="dim",
            end_section=True,
        )
    return table


def wide_console() -> Console:
    """A console at least 168 columns wide: logs and CI pipes default to 80, which folds every cell."""
    width = Console().width
    return Console(width=max(width, 168))


def print_summary(by_subset: Mapping[str, Mapping], title: str | None = None, console: Console | None = None) -> None:
    console = console or wide_console()
    console.print(render_table(by_subset, title))
    for name, m in by_subset.items():
        console.print(f"[bold]{name}[/bold]: {verdict(m)}")


def safe_name(subset: str) -> str:
    """A subset name usable in a file name: boolq/ms -> boolq-ms."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", subset).strip("-") or "subset"


def _groups(rows: Sequence[Mapping], key: Sequence[str], names: Sequence[str]) -> dict[str, list[Mapping]]:
    groups = {name: [] for name in names}
    groups["overall"] = list(rows)
    for row in rows if key else ():
        groups[subset_name(row, key)].append(row)
    return groups


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def plot_confusion(m: Mapping, path: Path, title: str) -> None:
    """Gold 1/0 against predicted 1/0/unparsed, counts written in the cells."""
    confusion = m["confusion"]
    counts = np.array([[confusion[g][p] for p in ("pred_1", "pred_0", "unparsed")] for g in ("gold_1", "gold_0")])
    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.add_subplot()
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(3), ["pred 1", "pred 0", "unparsed"])
    ax.set_yticks(range(2), ["gold 1", "gold 0"])
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > counts.max() / 2 else "black")
    ax.set_title(title)
    _save(fig, path)


def plot_roc(groups: Mapping[str, Sequence[Mapping]], by_subset: Mapping[str, Mapping], path: Path) -> None:
    """One ROC curve per subset that has probabilities for both gold classes."""
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance (0.50)")
    for name, rows in groups.items():
        if by_subset[name]["auroc"] is None:
            continue
        scored = [r for r in rows if r["probability"] is not None]
        fpr, tpr, _ = binary_roc(
            torch.tensor([r["probability"] for r in scored], dtype=torch.float64),
            torch.tensor([r["label"] for r in scored]),
        )
        ax.plot(fpr.numpy(), tpr.numpy(), label=f"{name} (AUROC {_fmt(by_subset[name]['auroc'])})")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC (rows with a probability)")
    ax.legend(loc="lower right", fontsize="small")
    _save(fig, path)


def plot_reliability(rows: Sequence[Mapping], m: Mapping, path: Path) -> None:
    """Share of gold 1s against mean P(1) per ECE bin, with each bin's row count."""
    bins = [b for b in reliability_bins([r["label"] for r in rows], [r["probability"] for r in rows]) if b["n"]]
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    ax.bar(
        [(b["low"] + b["high"]) / 2 for b in bins],
        [b["positive_rate"] for b in bins],
        width=0.1,
        edgecolor="black",
        alpha=0.6,
        label="share of gold 1s per bin",
    )
    ax.plot(
        [b["mean_probability"] for b in bins],
        [b["positive_rate"] for b in bins],
        "o-",
        color="darkred",
        label="same, at the bin's mean P(1)",
    )
    for b in bins:
        ax.text(
            (b["low"] + b["high"]) / 2,
            min(b["positive_rate"] + 0.02, 0.97),
            f"n={b['n']}",
            ha="center",
            fontsize="x-small",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("P(1) bin")
    ax.set_ylabel("share of gold 1s")
    ax.set_title(f"Reliability, overall (ECE {_fmt(m['ece'])}, {m['n_scored']} rows with P)")
    ax.legend(loc="upper left", fontsize="small")
    _save(fig, path)


def _md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in body)]


def _excerpt(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def worst_errors(rows: Sequence[Mapping], k: int = N_WORST) -> list[Mapping]:
    """Parsed wrong answers, most confident in the wrong class first; rows without P(1) come last."""
    wrong = [r for r in rows if r["prediction"] is not None and r["prediction"] != r["label"]]
    return sorted(wrong, key=lambda r: -1.0 if r["probability"] is None else -abs(r["label"] - r["probability"]))[:k]


def _report_markdown(rows, by_subset, title, judge_name, extra, key, plots) -> str:
    header = ["Subset", "Judge", *(c[0] for c in REPORT_COLUMNS)]
    body = []
    for name, m in by_subset.items():
        body.append([name, judge_name, *(_cell(m, c) for _, c in REPORT_COLUMNS)])
        body.append(
            [
                name,
                _baseline_label(m["majority_baseline"]),
                *(_cell(m["majority_baseline"], c) for _, c in REPORT_COLUMNS),
            ]
        )
    lines = [f"# {title}", "", f"Judge: **{judge_name}**", ""]
    for k, v in (extra or {}).items():
        if isinstance(v, list) and all(isinstance(item, str) for item in v):  # sentences, e.g. threshold warnings
            lines += [f"- {k}:", *(f"  - {item}" for item in v)] if v else [f"- {k}: none"]
        else:
            lines.append(f"- {k}: `{v}`")
    lines += [
        "",
        "Unparsed answers count as wrong (against accuracy, recall, specificity and as the wrong class in MCC)",
        "and never as a predicted class. Intervals are 95% percentile bootstraps over examples. The majority",
        "baseline always answers the subset's most common gold label.",
        "",
        "## Headline",
        "",
        *_md_table(header, body),
        "",
        "## Verdicts",
        "",
        *(f"- **{name}**: {verdict(m)}" for name, m in by_subset.items()),
        "",
        "## Confusion counts",
        "",
    ]
    confusion_rows = []
    for name, m in by_subset.items():
        for gold in ("gold_1", "gold_0"):
            c = m["confusion"][gold]
            confusion_rows.append([name, gold.replace("_", " "), c["pred_1"], c["pred_0"], c["unparsed"]])
    lines += _md_table(["Subset", "Gold", "Pred 1", "Pred 0", "Unparsed"], confusion_rows)
    lines += ["", f"## Most confident errors (up to {N_WORST})", ""]
    errors = worst_errors(rows)
    for r in errors:
        p = "—" if r["probability"] is None else f"{r['probability']:.3f}"
        lines += [
            f"- `{r['id']}` ({subset_name(r, key) or 'overall'}) gold {r['label']}, "
            f"predicted {r['prediction']}, P(1) = {p}",
            f"  - Claim: {_excerpt(r.get('claim'))}",
            f"  - Passage: {_excerpt(r.get('passage'))}",
        ]
    if not errors:
        lines.append("No parsed wrong answers.")
    unparsed = [r for r in rows if r["prediction"] is None]
    if unparsed:
        lines += ["", f"## Unparsed answers ({len(unparsed)}, counted as wrong; up to {N_WORST} shown)", ""]
        for r in unparsed[:N_WORST]:
            detail = "; ".join(f"{f}: {_excerpt(str(r[f]))}" for f in ("parse_error", "raw_output") if r.get(f))
            lines.append(f"- `{r['id']}`" + (f": {detail}" if detail else ""))
    lines += ["", "## Plots", "", *(f"![{p}]({p})" for p in plots), ""]
    return "\n".join(lines)


def _plot_files(names: Sequence[str]) -> dict[str, str]:
    files = {name: f"confusion_{safe_name(name)}.png" for name in names}
    if len(set(files.values())) < len(files):
        raise ValueError(f"subset names {list(names)} collide once made file-safe; rename a source or language")
    return files


def write_report(
    rows: Sequence[Mapping],
    out_dir: str | Path,
    title: str,
    judge_name: str,
    extra: Mapping | None = None,
    key: Sequence[str] = SUBSET_KEY,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Write predictions.jsonl, metrics.json, report.md and PNG plots into out_dir; return metrics.json's content."""
    by_subset = metrics_by_subset(rows, key, n_resamples=n_resamples, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / PREDICTIONS_FILE, jsonl(rows))
    summary = {"title": title, "judge": judge_name, "extra": dict(extra or {}), "key": list(key), "subsets": by_subset}
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")

    confusion_files = _plot_files(list(by_subset))
    groups = _groups(rows, key, list(by_subset))
    for name, m in by_subset.items():
        plot_confusion(m, out / confusion_files[name], f"{judge_name}: {name}")
    plot_roc(groups, by_subset, out / "roc.png")
    plot_reliability(rows, by_subset["overall"], out / "reliability.png")
    plots = [*confusion_files.values(), "roc.png", "reliability.png"]
    (out / "report.md").write_text(
        _report_markdown(rows, by_subset, title, judge_name, extra, key, plots), encoding="utf-8"
    )
    return summary


def _check_same_rows(named_rows: Mapping[str, Sequence[Mapping]], key: Sequence[str]) -> None:
    """Judges are comparable only on the same ids with the same gold labels and subsets."""
    if len(named_rows) < 2:
        raise ValueError(f"comparing needs at least two judges, got {list(named_rows)}")
    for rows in named_rows.values():
        validate_rows(rows, key)
    (ref_name, ref_rows), *others = named_rows.items()
    reference = {r["id"]: r for r in ref_rows}
    for name, rows in others:
        ids = {r["id"] for r in rows}
        missing, only = sorted(set(reference) - ids, key=str), sorted(ids - set(reference), key=str)
        if missing or only:
            raise ValueError(
                f"judges '{ref_name}' and '{name}' were not scored on the same ids: "
                f"{len(missing)} missing from '{name}' (e.g. {missing[:5]}), "
                f"{len(only)} only in '{name}' (e.g. {only[:5]})"
            )
        differ = [r["id"] for r in rows if any(r[f] != reference[r["id"]][f] for f in ("label", *key))]
        if differ:
            raise ValueError(
                f"judges '{ref_name}' and '{name}' disagree on the gold label or subset of {len(differ)} ids "
                f"(e.g. {differ[:5]})"
            )


def compare_judges(
    named_rows: Mapping[str, Sequence[Mapping]], key: Sequence[str] = SUBSET_KEY, n_resamples: int = 1000, seed: int = 0
) -> tuple[Table, dict]:
    """Side-by-side metrics per subset and an exact McNemar test for every pair of judges."""
    _check_same_rows(named_rows, key)
    names = list(named_rows)
    per_judge = {
        name: metrics_by_subset(rows, key, n_resamples=n_resamples, seed=seed) for name, rows in named_rows.items()
    }
    ref_rows = named_rows[names[0]]
    predictions = {name: {r["id"]: r["prediction"] for r in rows} for name, rows in named_rows.items()}
    result = {"judges": names, "key": list(key), "subsets": {}}
    for subset, rows in _groups(ref_rows, key, list(per_judge[names[0]])).items():
        labels, ids = [r["label"] for r in rows], [r["id"] for r in rows]
        result["subsets"][subset] = {
            "majority_baseline": per_judge[names[0]][subset]["majority_baseline"],
            "judges": {n: {k: v for k, v in per_judge[n][subset].items() if k != "majority_baseline"} for n in names},
            "mcnemar": [
                {
                    "judge_a": a,
                    "judge_b": b,
                    **mcnemar(labels, [predictions[a][i] for i in ids], [predictions[b][i] for i in ids]),
                }
                for a, b in itertools.combinations(names, 2)
            ],
        }
    return _comparison_table(result), result


def _comparison_table(result: Mapping) -> Table:
    first = result["judges"][0]
    table = Table(title="Judge comparison")
    for header in ("Subset", "Judge", *(c[0] for c in CONSOLE_COLUMNS), f"McNemar p vs {first}"):
        table.add_column(header)
    for subset, s in result["subsets"].items():
        p_vs_first = {t["judge_b"]: t["p_value"] for t in s["mcnemar"] if t["judge_a"] == first}
        for name, m in s["judges"].items():
            p = p_vs_first.get(name)
            table.add_row(
                subset if name == first else "",
                name,
                *(_cell(m, c) for _, c in CONSOLE_COLUMNS),
                "" if p is None else f"{p:.3g}",
            )
        base = s["majority_baseline"]
        table.add_row(
            "", _baseline_label(base), *(_cell(base, c) for _, c in CONSOLE_COLUMNS), "", style="dim", end_section=True
        )
    return table


def _comparison_markdown(result: Mapping) -> str:
    lines = ["# Judge comparison", "", f"Judges: {', '.join(result['judges'])}. Unparsed answers count as wrong.", ""]
    for subset, s in result["subsets"].items():
        base = s["majority_baseline"]
        body = [[name, *(_cell(m, c) for _, c in REPORT_COLUMNS)] for name, m in s["judges"].items()]
        body.append([_baseline_label(base), *(_cell(base, c) for _, c in REPORT_COLUMNS)])
        lines += [f"## {subset}", "", *_md_table(["Judge", *(c[0] for c in REPORT_COLUMNS)], body), ""]
        lines += [
            f"- McNemar {t['judge_a']} vs {t['judge_b']}: {t['b']} rows only {t['judge_a']} got right, "
            f"{t['c']} only {t['judge_b']} got right, exact p = {t['p_value']:.3g}"
            for t in s["mcnemar"]
        ]
        lines.append("")
    return "\n".join(lines)


def write_comparison(
    named_rows: Mapping[str, Sequence[Mapping]],
    out_dir: str | Path,
    key: Sequence[str] = SUBSET_KEY,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Write comparison.json and comparison.md into out_dir; return the comparison dict."""
    _, result = compare_judges(named_rows, key, n_resamples, seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "comparison.md").write_text(_comparison_markdown(result), encoding="utf-8")
    return result
