"""Choosing a judge's cut(s) on P(1) on a validation split, and saying when a cut rests on too few rows."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from hakim.data.dataset_io import read_split
from hakim.eval.judge import Judge
from hakim.prompting.chunks import Chunking
from hakim.runs.run_dir import RunDir
from hakim.verdict import choose_thresholds

# A cut chosen on fewer rows of a class than this moves with a handful of rows (recall in steps of 1/n):
# evaluate.py says so next to the cut.
STEADY_CUT_ROWS_PER_CLASS = 30

log = logging.getLogger(__name__)


def rows_per_class(sources: list[str], labels: list[int]) -> dict[str, dict[str, int]]:
    """How many rows of each label every source has: {"boolq": {"0": 107, "1": 195}, ...}."""
    counts = Counter(zip(sources, labels, strict=True))
    return {source: {str(label): counts[(source, label)] for label in (0, 1)} for source in sorted(set(sources))}


def thin_cut_warnings(class_rows: dict[str, dict[str, int]], cut_sources) -> list[str]:
    """One sentence per cut chosen on fewer than STEADY_CUT_ROWS_PER_CLASS rows of a class: each source's
    own cut (cut_sources), and the pooled cut when some source has none of its own and uses it."""
    cuts = {source: class_rows[source] for source in cut_sources}
    if set(class_rows) - set(cut_sources):
        cuts["all sources (the pooled cut)"] = {
            label: sum(rows[label] for rows in class_rows.values()) for label in ("0", "1")
        }
    warnings = []
    for name, counts in cuts.items():
        label, rows = min(counts.items(), key=lambda item: item[1])
        if rows < STEADY_CUT_ROWS_PER_CLASS:
            warnings.append(
                f"the cut for {name} was chosen on {rows} validation rows of class {label} "
                f"(fewer than {STEADY_CUT_ROWS_PER_CLASS}): a few rows move it; read its accuracy, "
                "F1 and balanced accuracy as rough, AUROC does not depend on it"
            )
    return warnings


def calibrate_threshold(judge: Judge, dataset_dir: Path, split: str, run: RunDir, by_source: bool = True) -> dict:
    """Choose the judge's cut(s) on `split` and store them in the run's threshold.json: the overall cut,
    one per source (by_source), how many rows of each class per source they were chosen on, and the chunking
    whose P(1) they cut (a maximum over chunks runs higher than one cut passage's P(1))."""
    records = read_split(dataset_dir, split)
    verdicts = judge.judge_batch([(r.passage, r.claim, r.source) for r in records], mode="score")
    labels, sources = [r.label for r in records], [r.source for r in records]
    thresholds = choose_thresholds(sources, labels, [v.probability for v in verdicts], by_source)
    return run.write_thresholds(
        thresholds,
        chosen_on=split,
        rows=len(records),
        rows_per_class=rows_per_class(sources, labels),
        chunking=judge.chunking.to_dict(),
    )


def warn_cut_chunking(run: RunDir, chunking: Chunking) -> None:
    """The run's stored cut was chosen on P(1) read another way (a maximum over chunks runs higher than one
    cut passage's P(1)): say so, and how to choose one for this reading."""
    if not run.thresholds_path.exists():
        return
    chosen = json.loads(run.thresholds_path.read_text()).get("chunking", Chunking().to_dict())
    if chosen != chunking.to_dict():
        log.warning(
            "the run's stored cut was chosen with chunking %s, this evaluation reads passages with %s: its "
            "labels may lean one way; threshold=validation chooses a cut for this chunking (AUROC does not "
            "depend on it)",
            chosen,
            chunking.to_dict(),
        )
