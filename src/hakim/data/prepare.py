"""`prepare(cfg)`: read sources, optionally translate and explain with a teacher, split by document,
check, and write a versioned dataset. Its output is the only thing training and evaluation read.

A dataset that fails the failure budget (conf/prepare_data.yaml: max_reject_fraction) is still written,
so its rejects can be read, but LATEST does not move to it and prepare raises BudgetExceeded."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hakim.data.budget import BudgetExceeded, FailureBudget
from hakim.data.checks import quality_checks, summary_lines
from hakim.data.dataset_io import LATEST_POINTER, write_dataset
from hakim.data.files import file_identity
from hakim.data.records import JudgeRecord
from hakim.data.sources import SourceSpec, read_source
from hakim.data.splits import evaluation_subset, split_by_document
from hakim.provenance import git_state

log = logging.getLogger(__name__)

REJECTS_FILE = "rejects.jsonl"  # rows refused while reading: {source, location, field, problem}
# {id, source, stage, reason, location, language, passage, claim, label}; reasoning rejects keep the row for V2
TEACHER_REJECTS_FILE = "teacher_rejects.jsonl"


def source_name(record_id: str) -> str:
    """The configured source a record came from: read_all_sources names ids `<source name>-<row>`."""
    return record_id.rsplit("-", 1)[0]


def read_all_sources(sources: dict, on_bad_row: str) -> tuple[list[JudgeRecord], dict, list[dict]]:
    """All sources' records (ids prefixed by the source's config name), a per-source report, and the rejects."""
    records, report, all_rejects = [], {}, []
    for name, options in sources.items():
        spec = SourceSpec(name=name, **options)
        result = read_source(spec, on_bad_row=on_bad_row)
        # ids must be unique across sources even when two files share a source and language
        records.extend(replace(record, id=f"{name}-{record.id.rsplit('-', 1)[-1]}") for record in result.records)
        all_rejects.extend({"source": name, **reject} for reject in result.rejects)
        report[name] = {"origin": spec.origin, "layout": spec.layout, "rows_read": result.rows_read,
                        "records": len(result.records), "rejected": len(result.rejects),
                        **(file_identity(Path(spec.path)) if spec.path else {})}
        if result.rejects:
            log.warning("%s: %d of %d rows rejected (listed in %s)", name, len(result.rejects), result.rows_read, REJECTS_FILE)
    return records, report, all_rejects


def with_source_lengths(records: list[JudgeRecord]) -> list[JudgeRecord]:
    """Keep each English text's length in `extra` (the teacher keeps `extra`) for the length-ratio check."""
    return [
        replace(record, extra={**record.extra, "source_passage_chars": len(record.passage),
                               "source_claim_chars": len(record.claim)})
        if record.language == "en" else record
        for record in records
    ]


def apply_teacher(records: list[JudgeRecord], teacher_cfg: DictConfig, work_dir: Path, dry_run: bool, retry_rejects: bool):
    """Translate and explain with the configured teacher; returns the kept records, a manifest entry and the rejects."""
    from hakim.data.teacher import TeacherSettings, run_teacher
    from hakim.data.teacher.requests import TEMPLATE_VERSION

    options = {key: value for key, value in OmegaConf.to_container(teacher_cfg, resolve=True).items() if key != "enabled"}
    result = run_teacher(records, TeacherSettings(**options), work_dir, dry_run=dry_run, retry_rejects=retry_rejects)
    stats = result.stats
    report = {
        "model": options.get("model", TeacherSettings.model),
        "prompt_hash": TEMPLATE_VERSION,  # sha256 of the system and user templates; also part of every cache key
        # What this version's rows cost, across every run that paid for them (killed, resumed, cached reruns)
        "answers": stats.answers_used,
        "input_tokens": stats.answers_input_tokens,
        "output_tokens": stats.answers_output_tokens,
        "cost_usd": stats.answers_cost_usd,
        # What this invocation sent and paid, retries and refused answers included
        "this_run": {"requests": stats.requests, "retries": stats.retries, "failed_attempts": stats.failed_attempts,
                     "cache_hits": stats.cache_hits, "input_tokens": stats.input_tokens,
                     "output_tokens": stats.output_tokens, "cost_usd": stats.cost_usd},
        "rejects": len(result.rejects),
        "without_reasoning_for_v3": len(result.v3_excluded),
        "settings": options,
        "stats": stats.to_dict(),
    }
    rejects = [{"id": reject["id"], "source": source_name(reject["id"]), **reject} for reject in result.rejects]
    return result.records, report, rejects


def read_budget(source_report: dict, max_fraction: float) -> FailureBudget:
    budget = FailureBudget(max_fraction)
    for name, report in source_report.items():
        budget.add(name, "read", report["rejected"], report["rows_read"])
        budget.kept[name] = report["records"]
    return budget


def add_teacher_stages(budget: FailureBudget, read: list[JudgeRecord], kept: list[JudgeRecord], rejects: list[dict],
                       teacher_cfg: DictConfig) -> None:
    """Translation is judged on the English rows, reasoning on the rows that reached it."""
    for name in budget.stages:
        mine = [record for record in read if source_name(record.id) == name]
        failed = Counter(reject["stage"] for reject in rejects if reject["source"] == name)
        translated = sum(record.language == "en" for record in mine) if teacher_cfg.translate else 0
        budget.add(name, "translate", failed["translate"], translated)
        if teacher_cfg.reasoning:
            budget.add(name, "reasoning", failed["reasoning"], len(mine) - failed["translate"])
        budget.kept[name] = sum(source_name(record.id) == name for record in kept)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def run_provenance(started: str) -> dict:
    """Which code, command and overrides made this version, and when: two manifests can then be told apart."""
    from hydra.core.hydra_config import HydraConfig

    code = git_state(Path(__file__).parent)
    return {
        "started": started,
        "finished": _now(),
        "code": {"commit": code["commit"], "dirty": code["dirty"]},
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "overrides": list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None,
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def prepare(cfg: DictConfig) -> Path:
    """Returns the version directory written (or the dataset root after a teacher dry run, which writes no data)."""
    started = _now()
    output_root = Path(cfg.output_dir)
    sources = OmegaConf.to_container(cfg.corpus.sources, resolve=True)
    records, source_report, rejects = read_all_sources(sources, cfg.on_bad_row)
    budget = read_budget(source_report, cfg.max_reject_fraction)
    teacher_report, teacher_rejects = None, []
    teacher_on = bool(cfg.get("teacher") and cfg.teacher.get("enabled"))
    if teacher_on and cfg.dry_run:
        apply_teacher(with_source_lengths(records), cfg.teacher, output_root / "teacher", dry_run=True,
                      retry_rejects=cfg.retry_rejects)
        log.info("dry run: %d rows read, %d rejected; no dataset written", len(records), len(rejects))
        for line in budget.lines():
            (log.info if budget.passed else log.warning)(line)
        return output_root
    # A source that already failed its budget is not worth paying a teacher for.
    if teacher_on and budget.passed:
        read = records
        records, teacher_report, teacher_rejects = apply_teacher(
            with_source_lengths(read), cfg.teacher, output_root / "teacher", dry_run=False, retry_rejects=cfg.retry_rejects)
        add_teacher_stages(budget, read, records, teacher_rejects, cfg.teacher)
    fractions = OmegaConf.to_container(cfg.splits, resolve=True)
    assigned = split_by_document(records, fractions, cfg.seed)
    splits = {name: [record for record in assigned if record.split == name] for name in fractions}
    splits["eval"] = evaluation_subset(splits[cfg.eval_split], cfg.eval_per_group)
    checks = quality_checks(splits)
    if checks["documents_in_several_splits"]:
        raise AssertionError(f"split leaked documents: {checks}")
    manifest_extra = {
        "name": cfg.corpus.name,
        "sources": source_report,
        "split_fractions": fractions,
        "seed": cfg.seed,
        "eval_protocol": f"first {cfg.eval_per_group} rows per source × language of the '{cfg.eval_split}' split",
        "rejects": {"read": len(rejects), "read_file": REJECTS_FILE,
                    "teacher": len(teacher_rejects), "teacher_file": TEACHER_REJECTS_FILE},
        "checks": checks,
        "teacher": teacher_report,
        "budget": budget.to_dict(),
        "provenance": run_provenance(started),
    }
    files = {REJECTS_FILE: _jsonl(rejects), TEACHER_REJECTS_FILE: _jsonl(teacher_rejects)}
    target = write_dataset(splits, output_root, manifest_extra, files, point_latest=budget.passed)
    if not budget.passed:
        summary = "\n".join(budget.lines())
        raise BudgetExceeded(
            f"{summary}\nnot published: {target} holds the rows and rejects ({REJECTS_FILE}, {TEACHER_REJECTS_FILE}); "
            f"{output_root / LATEST_POINTER} was left as it was. Fix the source or endpoint and rerun "
            "(retry_rejects=true asks the teacher again for its failures), or raise max_reject_fraction.")
    log.info("prepared dataset: %s (%s)", target, {name: len(rows) for name, rows in splits.items()})
    for line in budget.lines():
        log.info(line)
    overview, problems = summary_lines(checks)
    log.info(overview)
    for line in problems:
        log.warning(line)
    return target
