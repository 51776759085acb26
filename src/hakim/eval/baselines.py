"""Judges that never read the passage: the floor a trained judge has to clear, scored like any judge."""

from __future__ import annotations

from collections.abc import Sequence

from hakim.verdict import Thresholds, Verdict

MODE = "constant"


class ConstantJudge:
    """Gives every item the same P(1); the label is P(1) against the threshold, as for a scoring judge."""

    default_mode = MODE
    modes = (MODE,)

    def __init__(self, probability: float, name: str, thresholds: Thresholds = Thresholds()):
        self.probability = probability
        self.name = name
        self.thresholds = thresholds

    def judge_batch(self, items: list[tuple[str, str, str]], mode: str | None = None) -> list[Verdict]:
        if mode not in (None, MODE):
            raise ValueError(f"the {self.name} baseline has one mode, {MODE!r}; got {mode!r}")
        return [Verdict(self.thresholds.label(self.probability, source), self.probability) for _, _, source in items]


def majority_judge(reference_labels: Sequence[int], reference_name: str) -> ConstantJudge:
    """Always the majority class of the reference labels (ties: 1), with P(1) = their base rate.

    With the training split as reference this is what a judge learns from the label balance alone.
    """
    if not reference_labels:
        raise ValueError(f"the majority baseline needs labels, and {reference_name} has none")
    return ConstantJudge(sum(reference_labels) / len(reference_labels), f"majority-{reference_name}")


def always_one_judge() -> ConstantJudge:
    return ConstantJudge(1.0, "always-1")
