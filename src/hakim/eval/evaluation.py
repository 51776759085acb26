"""`evaluate(cfg)`: score a judge on a prepared split, or on your own file of rows (`rows=PATH`), and write
predictions, metrics, report, plots. Choosing cuts is hakim.eval.thresholds'; comparing evaluations,
hakim.eval.comparison's."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hakim.data.checks import repeated_rows
from hakim.data.dataset_io import read_split
from hakim.data.records import JudgeRecord
from hakim.errors import HakimError
from hakim.eval.judges import AnyJudge, chunking_of, describe_judge, load_judge
from hakim.eval.openai_judge import OpenAIJudge
from hakim.eval.report import print_summary, write_report
from hakim.eval.rows import dataset_dir_for, read_rows_file
from hakim.eval.thresholds import calibrate_threshold, thin_cut_warnings, warn_cut_chunking
from hakim.runs.run_dir import RunDir
from hakim.verdict import Thresholds

log = logging.getLogger(__name__)


class NoVerdicts(HakimError, RuntimeError):
    """The judge gave no verdict for too many rows: its metrics would score silence, not judgement."""


def verdict_rows(records: list[JudgeRecord], judge: AnyJudge, mode: str) -> list[dict]:
    verdicts = judge.judge_batch([(r.passage, r.claim, r.source) for r in records], mode=mode)
    return [
        {
            "id": record.id,
            "source": record.source,
            "language": record.language,
            "label": record.label,
            "prediction": verdict.label,
            "probability": verdict.probability,
            "reasoning": verdict.reasoning,
            "raw_output": verdict.raw_output,
            "parse_error": verdict.parse_error,
            "passage_truncated": verdict.truncated,
            # chunked judging: the chunk that decided (from 0), how many the passage made, that chunk as read,
            # and the claim sentence it decided for (with chunking.split_claim); null without chunking
            "chunk": verdict.chunk,
            "chunk_count": verdict.chunk_count,
            "chunk_text": verdict.chunk_text,
            "claim_sentence": verdict.claim_sentence,
            "passage": record.passage,
            "claim": record.claim,
        }
        for record, verdict in zip(records, verdicts, strict=True)
    ]


def check_verdicts(rows: list[dict], max_fraction: float, judge: str, out_dir: Path) -> None:
    """Raise NoVerdicts, in one line naming the judge and its commonest error, when more than max_fraction
    of the rows have no verdict (unparsed, refused or failed); called after the files are written."""
    errors = Counter(row["parse_error"] or "no verdict" for row in rows if row["prediction"] is None)
    missing = sum(errors.values())
    if not rows or missing / len(rows) <= max_fraction:
        return
    error, count = errors.most_common(1)[0]
    raise NoVerdicts(
        f"judge {judge} gave no verdict for {missing}/{len(rows)} rows (more than "
        f"max_unparsed_fraction={max_fraction}); commonest error ({count} rows): {error}; fix the judge "
        f"or its endpoint and rerun, or accept it with max_unparsed_fraction=1.0 (predictions and "
        f"report are in {out_dir})"
    )


def warn_repeated_rows(records: list[JudgeRecord]) -> int:
    """A user's file may hold a row twice (a merge, an export run twice); each copy is scored and counted, so say
    which lines repeat which. Returns how many rows repeat an earlier one."""
    pairs = repeated_rows(records)
    if pairs:
        examples = [
            f"{row.extra['origin']} repeats {earlier.extra['origin']}"
            + (" with another label" if row.label != earlier.label else "")
            for row, earlier in pairs[:3]
        ]
        log.warning(
            "%d rows repeat an earlier row's passage and claim (%s%s): each is scored and counted in the metrics "
            "again; remove them to count every row once",
            len(pairs),
            "; ".join(examples),
            "; …" if len(pairs) > 3 else "",
        )
    return len(pairs)


def records_to_judge(cfg: DictConfig, run: RunDir | None) -> tuple[list[JudgeRecord], str, dict]:
    """The rows to judge, a short name for them, and what metrics.json records about where they came from."""
    if cfg.rows:
        records, rejects = read_rows_file(cfg)
        for reject in rejects:
            log.warning("rejected %s: field '%s': %s", reject["location"], reject["field"], reject["problem"])
        origin = {
            "rows": str(cfg.rows),
            "columns": OmegaConf.to_container(cfg.columns, resolve=True),
            "rows_rejected": len(rejects),
            "rows_repeated": warn_repeated_rows(records),
        }
        return records, Path(cfg.rows).name, origin
    dataset_dir = dataset_dir_for(cfg, run)
    return (
        read_split(dataset_dir, cfg.split),
        f"{dataset_dir.name}/{cfg.split}",
        {"dataset_dir": str(dataset_dir), "split": cfg.split},
    )


def evaluate(cfg: DictConfig) -> dict:
    judge, run = load_judge(cfg)
    threshold_notes = {}
    if cfg.threshold == "validation":
        if run is None or judge.default_mode != "score":
            raise ValueError("threshold=validation needs a score-mode judge from a run directory")
        stored = calibrate_threshold(
            judge, dataset_dir_for(cfg, run), cfg.threshold_split, run, by_source=cfg.threshold_by_source
        )
        judge.thresholds = Thresholds(stored["threshold"], stored["by_source"])
        warnings = thin_cut_warnings(stored["rows_per_class"], stored["by_source"])
        for warning in warnings:
            log.warning(warning)
        threshold_notes = {"threshold_rows_per_class": stored["rows_per_class"], "threshold_warnings": warnings}
    elif cfg.threshold is not None:
        judge.thresholds = Thresholds(float(cfg.threshold))
    elif run is not None:
        warn_cut_chunking(run, chunking_of(cfg))
    mode = cfg.mode or judge.default_mode
    records, rows_name, origin = records_to_judge(cfg, run)
    if cfg.limit:
        records = records[: cfg.limit]
    rows = verdict_rows(records, judge, mode)
    out_dir = Path(cfg.paths.output_dir)
    extra = {
        "judge": cfg.judge.kind,
        **describe_judge(cfg, run),
        "mode": mode,
        "chunking": chunking_of(cfg).to_dict(),
        "threshold": judge.thresholds.overall,
        "source_thresholds": judge.thresholds.by_source,
        **threshold_notes,
        **origin,
    }
    summary = write_report(
        rows, out_dir, title=f"Hakim judge evaluation: {judge.name}", judge_name=judge.name, extra=extra
    )
    print_summary(summary["subsets"], title=f"{judge.name} on {rows_name} ({mode})")
    print(f"predictions, metrics.json, report.md and plots: {out_dir}")
    if cfg.wandb.enabled:
        from hakim.eval.wandb_report import log_evaluation
        from hakim.provenance import redact

        settings = OmegaConf.to_container(cfg.wandb, resolve=True)
        log_evaluation(summary, rows, out_dir, settings, redact(OmegaConf.to_container(cfg, resolve=True)))
    where = f"{judge.name} at {judge.settings.endpoint.name}" if isinstance(judge, OpenAIJudge) else judge.name
    check_verdicts(rows, cfg.max_unparsed_fraction, where, out_dir)
    return summary
