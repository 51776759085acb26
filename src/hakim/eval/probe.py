"""Can the base model read the answer at all? A linear probe on its frozen hidden states.

Before spending hours of fine-tuning on a base model, ask whether the verdict is linearly readable
from what the model already computes: run the *frozen* model once over every row (prompt + answer
prefix, exactly as the judge is asked), keep the hidden state of every layer at the verdict
position, fit a class-balanced logistic regression per layer on the train split, choose layer and
L2 strength on validation (mean per-subset AUROC), choose a threshold per source on validation,
and report the held-out evaluation subset with bootstrap intervals, plus a learning curve (the
chosen probe refitted on nested seeded samples of 100, 200, 400, … train rows). If no layer beats chance, LoRA on
top of that model has little to find in the data it is given; `--input claim_only` (passage
removed) shows how much a judge could score from the claim alone.

`python -m hakim.cli.probe --dataset-dir data/real --model conf/model/smollm2_135m.yaml --out runs/probe/ms`

With `--chunk-tokens N` the probe is scored as a chunked judge is (hakim.prompting.chunks): validation and
evaluation rows are read as chunks, the probe's P(1) of a row is the maximum over its chunks (the minimum
over claim sentences with `--split-claim`); train rows are read whole, as a judge is trained.

Features are written in shards as they are computed: a killed run resumes where it stopped (a shard
whose rows no longer match, e.g. after changing --max-train-rows, is computed again).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hakim.batching import length_sorted_batches, pad_with_mask
from hakim.data.dataset_io import read_split
from hakim.data.records import JudgeRecord
from hakim.eval.metrics import metrics_by_subset
from hakim.file_writes import write_atomically
from hakim.models.loading import ModelSpec, load_base_model, load_tokenizer, resolve_model_path
from hakim.prompting.chunks import Chunking, chunk_row
from hakim.prompting.prompt import ENCODING_VERSION, encode_for_scoring
from hakim.prompting.style import PromptStyle
from hakim.verdict import Thresholds, choose_thresholds

INPUTS = ("full", "claim_only")
SHARD_ROWS = 64
L2_STRENGTHS = (1e-4, 1e-3, 1e-2, 1e-1)


def probe_text(record: JudgeRecord, input_kind: str) -> tuple[str, str, str]:
    if input_kind not in INPUTS:
        raise ValueError(f"input must be one of {INPUTS}, got {input_kind!r}")
    return ("" if input_kind == "claim_only" else record.passage), record.claim, record.source


@torch.no_grad()
def verdict_position_states(
    model, tokenizer, items: list[tuple[str, str, str]], style: PromptStyle, max_length: int, batch_size: int = 1
) -> torch.Tensor:
    """[rows, layers + 1, hidden]: every layer's hidden state where the judge would write its verdict.

    One row per forward pass by default: on CPU in bf16 that was the fastest (padding costs more
    than batching saves); pass a larger batch_size on a GPU."""
    encoded = [encode_for_scoring(tokenizer, p, c, s, style, max_length)[0] for p, c, s in items]
    out: list[torch.Tensor | None] = [None] * len(encoded)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for batch in length_sorted_batches([len(ids) for ids in encoded], batch_size):
        input_ids, attention = pad_with_mask([encoded[i] for i in batch], pad_id)
        output = model(
            input_ids=input_ids.to(model.device),
            attention_mask=attention.to(model.device),
            output_hidden_states=True,
            logits_to_keep=1,
        )
        last = attention.sum(dim=1) - 1
        states = torch.stack(output.hidden_states, dim=1)  # [batch, layers + 1, width, hidden]
        for row, index in enumerate(batch):
            out[index] = states[row, :, last[row]].float().cpu()
    return torch.stack(out)


@dataclass(frozen=True)
class ProbeInputs:
    """What the frozen model reads for one split: one item per record, or (chunked) one per chunk × claim
    sentence of each record; `keys` name the items in the feature shards."""

    keys: list[str]
    items: list[tuple[str, str, str]]
    cells: list[list[list[int]]] | None = None  # chunked: per record, per claim sentence, the items of its chunks

    def row_probabilities(self, probabilities: np.ndarray) -> np.ndarray:
        """The records' P(1) from the items': the chunked judge's rule (hakim.verdict.deciding_cell) on P(1) alone,
        the maximum over a sentence's chunks and the minimum over the claim's sentences."""
        if self.cells is None:
            return probabilities
        return np.array([min(max(probabilities[i] for i in chunks) for chunks in record) for record in self.cells])


def probe_inputs(
    records: list[JudgeRecord],
    input_kind: str,
    tokenizer=None,
    style: PromptStyle | None = None,
    max_length: int | None = None,
    chunking: Chunking = Chunking(),
) -> ProbeInputs:
    items = [probe_text(r, input_kind) for r in records]
    if not chunking.enabled:
        return ProbeInputs([r.id for r in records], items)
    keys, flat, cells = [], [], []
    for record, (passage, claim, source) in zip(records, items, strict=True):
        row = chunk_row(tokenizer, passage, claim, source, style, max_length, chunking)
        first = len(flat)
        flat += row.items()
        keys += [f"{record.id}#{s}.{c}" for s in range(len(row.claims)) for c in range(len(row.chunks))]
        cells.append(row.grid(list(range(first, len(flat)))))
    return ProbeInputs(keys, flat, cells)


def features_recipe(model: str, style: PromptStyle, max_length: int, items: list[tuple[str, str, str]]) -> str:
    """What a feature shard was computed from: the model, the prompt (style, length, encoding) and every item's
    text. A shard of the same row ids but another recipe (another --input, style, model or dataset version) is
    computed again, never reused."""
    described = [model, style.to_dict(), max_length, ENCODING_VERSION, items]
    return hashlib.sha256(json.dumps(described, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def cached_features(
    model,
    tokenizer,
    inputs: ProbeInputs,
    style: PromptStyle,
    max_length: int,
    cache_dir: Path,
    log=print,
    batch_size: int = 1,
    model_name: str = "",
) -> torch.Tensor:
    """Features of `inputs`' items, computed shard by shard under cache_dir (shards of the same rows and recipe
    are reused)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    shards = []
    total = len(inputs.items)
    for start in range(0, total, SHARD_ROWS):
        path = cache_dir / f"{start:07d}.pt"
        keys, items = inputs.keys[start : start + SHARD_ROWS], inputs.items[start : start + SHARD_ROWS]
        recipe = features_recipe(model_name, style, max_length, items)
        if path.exists():
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if stored["ids"] == keys and stored.get("recipe") == recipe:
                shards.append(stored["features"])
                continue
            log(f"  {path} holds other rows, or rows read otherwise, than asked now: computing it again")
        features = verdict_position_states(model, tokenizer, items, style, max_length, batch_size)
        shard = io.BytesIO()
        torch.save({"ids": keys, "recipe": recipe, "features": features}, shard)
        write_atomically(path, shard.getvalue())  # a shard exists whole or not at all
        shards.append(features)
        log(f"  {cache_dir.name}: {min(start + SHARD_ROWS, total)}/{total} rows")
    return torch.cat(shards)


@dataclass
class LinearProbe:
    mean: torch.Tensor
    scale: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    def probabilities(self, features: torch.Tensor) -> np.ndarray:
        z = (features - self.mean) / self.scale
        return torch.sigmoid(z @ self.weight + self.bias).numpy()


def fit_linear_probe(features: torch.Tensor, labels: list[int], l2: float, max_iter: int = 200) -> LinearProbe:
    """Class-balanced logistic regression on standardized features (L-BFGS, L2 on the weights)."""
    y = torch.tensor(labels, dtype=torch.float64)
    if y.min() == y.max():
        raise ValueError("the train split has one class only: a probe cannot be fitted")
    x = features.double()
    mean, scale = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
    z = (x - mean) / scale
    positives = y.mean()
    sample_weight = torch.where(y == 1, 0.5 / positives, 0.5 / (1 - positives))
    weight = torch.zeros(z.size(1), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def loss_fn():
        optimizer.zero_grad()
        logits = z @ weight + bias
        loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none") * sample_weight
        ).mean()
        loss = loss + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(loss_fn)
    return LinearProbe(mean.float(), scale.float(), weight.detach().float(), bias.detach().float())


def _rows(records: list[JudgeRecord], probabilities: np.ndarray, thresholds: Thresholds = Thresholds()) -> list[dict]:
    return [
        {
            "id": r.id,
            "source": r.source,
            "language": r.language,
            "label": r.label,
            "prediction": thresholds.label(float(p), r.source),
            "probability": float(p),
        }
        for r, p in zip(records, probabilities, strict=True)
    ]


def mean_subset_auroc(records: list[JudgeRecord], probabilities: np.ndarray) -> float:
    """Mean AUROC over source × language subsets: pooled AUROC rewards a per-source offset."""
    by_subset = metrics_by_subset(_rows(records, probabilities), n_resamples=0)
    values = [m["auroc"] for name, m in by_subset.items() if name != "overall" and m["auroc"] is not None]
    return float(np.mean(values)) if values else float("nan")


def _each(probabilities: np.ndarray) -> np.ndarray:
    return probabilities


def select_probe(
    train: tuple[list[JudgeRecord], torch.Tensor],
    validation: tuple[list[JudgeRecord], torch.Tensor],
    layers: list[int] | None = None,
    strengths=L2_STRENGTHS,
    combine: Callable[[np.ndarray], np.ndarray] = _each,
) -> tuple[dict, list[dict]]:
    """Fit every (layer, L2) on train, score each on validation; the best by mean subset AUROC. `combine` turns
    the validation features' P(1) into the records' (chunked: ProbeInputs.row_probabilities)."""
    train_records, train_x = train
    val_records, val_x = validation
    layers = layers if layers is not None else list(range(train_x.size(1)))
    labels = [r.label for r in train_records]
    trials = []
    for layer in layers:
        for l2 in strengths:
            probe = fit_linear_probe(train_x[:, layer], labels, l2)
            val_p = combine(probe.probabilities(val_x[:, layer]))
            trials.append(
                {
                    "layer": layer,
                    "l2": l2,
                    "val_auroc": mean_subset_auroc(val_records, val_p),
                    "train_auroc": mean_subset_auroc(train_records, probe.probabilities(train_x[:, layer])),
                    "probe": probe,
                    "val_probabilities": val_p,
                }
            )
    best = max(trials, key=lambda t: (np.nan_to_num(t["val_auroc"], nan=-1.0), -t["l2"]))
    return best, trials


def seeded_order(total: int, seed: int = 0) -> list[int]:
    """A fixed random order of row indices: its prefixes are nested samples drawn across every source.

    Stored splits list one source after another, so "the first n rows" would be one source alone.
    """
    return random.Random(seed).sample(range(total), total)


def probe_learning_curve(
    train: tuple[list[JudgeRecord], torch.Tensor],
    validation: tuple[list[JudgeRecord], torch.Tensor],
    layer: int,
    l2: float,
    sizes: list[int] | None = None,
    combine: Callable[[np.ndarray], np.ndarray] = _each,
) -> list[dict]:
    """Validation AUROC of the chosen probe fitted on n train rows (nested seeded samples): would more rows help?"""
    train_records, train_x = train
    val_records, val_x = validation
    total = len(train_records)
    sizes = sizes or sorted({n for n in (100, 200, 400, 800, 1600, 3200) if n < total} | {total})
    order = seeded_order(total)
    points = []
    for n in sizes:
        rows = sorted(order[:n])
        labels = [train_records[i].label for i in rows]
        if min(labels) == max(labels):
            continue
        probe = fit_linear_probe(train_x[rows, layer], labels, l2)
        val_p = combine(probe.probabilities(val_x[:, layer]))
        points.append({"train_rows": n, "val_auroc": mean_subset_auroc(val_records, val_p)})
    return points


def run_probe(
    model_spec: ModelSpec,
    dataset_dir: Path,
    out_dir: Path,
    style: PromptStyle,
    max_length: int,
    input_kind: str = "full",
    max_train_rows: int | None = None,
    log=print,
    batch_size: int = 1,
    chunking: Chunking = Chunking(),
) -> dict:
    chunking.check_style(style)
    path = resolve_model_path(model_spec)
    model = load_base_model(model_spec, path).eval()
    log(
        f"probe: {model_spec.name} ({model_spec.quantization or model_spec.compute_dtype}), {input_kind} input, "
        f"dataset {dataset_dir}"
    )
    tokenizer = load_tokenizer(path)
    splits = {name: read_split(dataset_dir, name) for name in ("train", "validation", "eval")}
    if max_train_rows and max_train_rows < len(splits["train"]):
        splits["train"] = [splits["train"][i] for i in sorted(seeded_order(len(splits["train"]))[:max_train_rows])]
    # train is read whole, as a judge is trained; the others as the judge reads them
    inputs = {
        name: probe_inputs(
            records, input_kind, tokenizer, style, max_length, Chunking() if name == "train" else chunking
        )
        for name, records in splits.items()
    }
    chunked = f"-chunks{chunking.chunk_tokens}{'-claims' if chunking.split_claim else ''}" if chunking.enabled else ""
    features = {
        name: cached_features(
            model,
            tokenizer,
            inputs[name],
            style,
            max_length,
            out_dir / "features" / (name if name == "train" else name + chunked),
            log,
            batch_size,
            f"{model_spec.name}|{model_spec.quantization}|{model_spec.compute_dtype}",
        )
        for name in splits
    }
    combine = inputs["validation"].row_probabilities
    best, trials = select_probe(
        (splits["train"], features["train"]), (splits["validation"], features["validation"]), combine=combine
    )
    val_labels, val_p = [r.label for r in splits["validation"]], best["val_probabilities"].tolist()
    thresholds = choose_thresholds([r.source for r in splits["validation"]], val_labels, val_p)
    eval_p = inputs["eval"].row_probabilities(best["probe"].probabilities(features["eval"][:, best["layer"]]))
    by_subset = metrics_by_subset(_rows(splits["eval"], eval_p, thresholds))
    result = {
        "model": model_spec.name,
        "quantization": model_spec.quantization,
        "dataset_dir": str(dataset_dir),
        "input": input_kind,
        "style": style.to_dict(),
        "max_length": max_length,
        "chunking": chunking.to_dict(),
        "rows": {name: len(records) for name, records in splits.items()},
        "chosen": {
            "layer": best["layer"],
            "l2": best["l2"],
            "val_mean_subset_auroc": best["val_auroc"],
            "threshold": thresholds.overall,
            "source_thresholds": thresholds.by_source,
        },
        "learning_curve": probe_learning_curve(
            (splits["train"], features["train"]),
            (splits["validation"], features["validation"]),
            best["layer"],
            best["l2"],
            combine=combine,
        ),
        "trials": [{k: v for k, v in t.items() if k not in ("probe", "val_probabilities")} for t in trials],
        "eval": by_subset,
    }
    (out_dir / "probe.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result


def print_result(result: dict) -> None:
    from hakim.eval.report import print_summary

    chosen = result["chosen"]
    print(
        f"probe ({result['input']}): layer {chosen['layer']}, l2 {chosen['l2']}, "
        f"validation mean subset AUROC {chosen['val_mean_subset_auroc']:.3f}, thresholds {chosen['source_thresholds']}"
    )
    best_per_layer = {}
    for trial in result["trials"]:
        if trial["layer"] not in best_per_layer or trial["val_auroc"] > best_per_layer[trial["layer"]]["val_auroc"]:
            best_per_layer[trial["layer"]] = trial
    print("layer  val AUROC  train AUROC")
    for layer, trial in sorted(best_per_layer.items()):
        print(f"{layer:5d}  {trial['val_auroc']:9.3f}  {trial['train_auroc']:11.3f}")
    print("train rows  val AUROC (chosen layer and l2)")
    for point in result["learning_curve"]:
        print(f"{point['train_rows']:10d}  {point['val_auroc']:.3f}")
    print_summary(result["eval"], title=f"linear probe on frozen {result['model']} ({result['input']} input)")
