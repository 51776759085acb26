"""From a judge's output to a verdict: the label tokens, P(1), the strict parser and the thresholds.

Training, the local judge, the probe and the OpenAI judge all read verdicts through this module, so
P(1) is computed, an answer parsed and a cut applied the same way everywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import torch

from hakim.prompting.answer import LABEL_TOKENS, REASONING_KEY, VERDICT_KEY


@dataclass(frozen=True)
class Verdict:
    """One judged row. `label` None means the answer did not parse: it is counted as unparsed, never as a class."""

    label: int | None
    probability: float | None
    reasoning: str | None = None
    raw_output: str | None = None
    parse_error: str | None = None
    truncated: bool = False
    # chunked judging (hakim.prompting.chunks): the chunk whose verdict decided, from 0 in passage order, the
    # passage's number of chunks, that chunk as the judge read it, and (split_claim) the claim sentence it decided for
    chunk: int | None = None
    chunk_count: int | None = None
    chunk_text: str | None = None
    claim_sentence: int | None = None


def _decisive(verdicts: list[Verdict], supports: bool) -> int:
    """Index of the verdict that decides "some verdict says 1" (supports) or "every verdict says 1" (not supports):
    the likeliest 1 (or, if none says 1 and all parsed, the likeliest 0) for the first; the least likely 0 (or 1)
    for the second. A verdict without a label decides only when no verdict settles it: then the row has none."""
    decisive_label = 1 if supports else 0
    pick = max if supports else min
    unknown = float("-inf") if supports else float("inf")

    def likelihood(index: int) -> float:
        probability = verdicts[index].probability
        return unknown if probability is None else probability

    settling = [index for index, verdict in enumerate(verdicts) if verdict.label == decisive_label]
    if settling:
        return pick(settling, key=likelihood)
    unlabelled = [index for index, verdict in enumerate(verdicts) if verdict.label is None]
    if unlabelled:
        return unlabelled[0]
    return pick(range(len(verdicts)), key=likelihood)


def deciding_cell(grid: list[list[Verdict]]) -> tuple[int, int]:
    """(claim sentence, chunk) whose verdict is a chunked row's: each claim sentence is supported if some chunk
    supports it (P(1) the maximum over chunks), the claim if every sentence is (the minimum over sentences).
    Scored verdicts are labelled by one cut on P(1), so this is the cell of min over sentences of max over
    chunks, and the row's label is that P(1) against the cut. Generated verdicts go by their parsed labels."""
    best = [_decisive(row, supports=True) for row in grid]
    sentence = _decisive([row[chunk] for row, chunk in zip(grid, best, strict=True)], supports=False)
    return sentence, best[sentence]


def label_token_ids(tokenizer) -> dict[int, int]:
    """Token id of each label; refuses a tokenizer that cannot say '1' or '0' in one token."""
    ids = {}
    for label, token in LABEL_TOKENS.items():
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id:
            raise ValueError(f"tokenizer has no single token for the label {token!r}; Hakim needs one per label")
        ids[label] = token_id
    if ids[0] == ids[1]:
        raise ValueError("the two label tokens map to the same id")
    return ids


def label_pair_logits(states: torch.Tensor, head: torch.nn.Module, label_ids: dict[int, int]) -> torch.Tensor:
    """(rows, 2) float32 logits of label 0 and label 1 from hidden states at the verdict position.

    Computed in float32 from the head's two label rows: a bf16 head rounds logits of magnitude 16–64
    to steps of 0.125–0.25, so P(1) = sigmoid(logit₁ − logit₀) took a dozen distinct values and AUROC,
    thresholds and calibration were measured on ties. A head that is not a plain Linear (LoRA-wrapped,
    quantized) is applied as it is and only its output upcast.
    """
    pair_ids = [label_ids[0], label_ids[1]]
    if type(head) is torch.nn.Linear and head.weight.is_floating_point():
        logits = states.float() @ head.weight[pair_ids].float().T
        return logits + head.bias[pair_ids].float() if head.bias is not None else logits
    return head(states).float()[:, pair_ids]


def probability_at(
    hidden: torch.Tensor, positions: torch.Tensor, head: torch.nn.Module, label_ids: dict[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P(1), label-pair logits) read from the hidden state at `positions` (one per row): the position
    whose next-token prediction is the verdict."""
    rows = torch.arange(hidden.size(0), device=hidden.device)
    pair = label_pair_logits(hidden[rows, positions], head, label_ids)
    return pair.softmax(dim=-1)[:, 1], pair


@dataclass(frozen=True)
class ParsedAnswer:
    label: int | None
    reasoning: str | None
    error: str | None


def parse_answer(text: str) -> ParsedAnswer:
    """Strictly read a judge's answer: one JSON object whose verdict is the number 0 or 1.

    Anything else is `label=None` with the reason; callers count it as unparsed, never as a class.
    """
    stripped = text.strip()
    try:
        answer, end = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError as error:
        return ParsedAnswer(None, None, f"not JSON: {error.msg}")
    if stripped[end:].strip():
        return ParsedAnswer(None, None, "text after the JSON object")
    if not isinstance(answer, dict) or VERDICT_KEY not in answer:
        return ParsedAnswer(None, None, f"no '{VERDICT_KEY}' key")
    verdict = answer[VERDICT_KEY]
    if isinstance(verdict, bool) or verdict not in (0, 1):
        return ParsedAnswer(None, None, f"verdict {verdict!r} is not 0 or 1")
    reasoning = answer.get(REASONING_KEY)
    return ParsedAnswer(int(verdict), reasoning if isinstance(reasoning, str) else None, None)


@dataclass(frozen=True)
class Thresholds:
    """The cut on P(1): one overall, and one per source (task) where validation chose one (BoolQ is
    mostly "yes", FIB mostly "no", so one cut for both favours neither)."""

    overall: float = 0.5
    by_source: dict[str, float] = field(default_factory=dict)

    def for_source(self, source: str) -> float:
        return self.by_source.get(source, self.overall)

    def label(self, probability: float, source: str) -> int:
        return int(probability >= self.for_source(source))


def choose_threshold(labels: list[int], probabilities: list[float]) -> float:
    """The cut on P(1) that maximises balanced accuracy (ties: the one closest to 0.5)."""
    y = np.asarray(labels)
    p = np.asarray(probabilities, dtype=float)
    if y.min() == y.max():
        raise ValueError("cannot choose a threshold on a split with one class only")
    candidates = np.unique(np.append(p, 0.5))
    predicted = p[None, :] >= candidates[:, None]
    recall = (predicted & (y == 1)).sum(axis=1) / (y == 1).sum()
    specificity = (~predicted & (y == 0)).sum(axis=1) / (y == 0).sum()
    balanced = (recall + specificity) / 2
    best = np.flatnonzero(np.isclose(balanced, balanced.max()))
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def choose_source_thresholds(sources: list[str], labels: list[int], probabilities: list[float]) -> dict[str, float]:
    """One cut per source whose rows hold both classes (a source with one class keeps the overall cut)."""
    by_source: dict[str, tuple[list[int], list[float]]] = {}
    for source, label, probability in zip(sources, labels, probabilities, strict=True):
        by_source.setdefault(source, ([], []))
        by_source[source][0].append(label)
        by_source[source][1].append(probability)
    return {source: choose_threshold(y, p) for source, (y, p) in sorted(by_source.items()) if min(y) != max(y)}


def choose_thresholds(
    sources: list[str], labels: list[int], probabilities: list[float], by_source: bool = True
) -> Thresholds:
    return Thresholds(
        choose_threshold(labels, probabilities),
        choose_source_thresholds(sources, labels, probabilities) if by_source else {},
    )
