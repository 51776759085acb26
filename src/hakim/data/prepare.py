"""`prepare(cfg)`: read sources, optionally translate and explain with a teacher, split by document, optionally
add synthetic claims made from the documents (augment=perturb, hakim.data.perturb), check, and write a versioned
dataset. Its output is the only thing training and evaluation read.

A dataset that fails the failure budget (conf/prepare_data.yaml: max_reject_fraction) is still written,
so its rejects can be read, but LATEST does not move to it and prepare raises BudgetExceeded."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hakim.data.budget import BudgetExceeded, FailureBudget
from hakim.data.checks import quality_checks, summary_lines
from hakim.data.dataset_io import LATEST_POINTER, write_dataset
from hakim.data.files import file_identity
from hakim.data.perturb import is_synthetic
from hakim.data.records import JudgeRecord
from hakim.data.sources import SourceSpec, read_source
from hakim.data.splits import evaluation_subset, split_by_document
from hakim.file_writes import jsonl
from hakim.provenance import git_state

log = logging.getLogger(__name__)

REJECTS_FILE = "rejects.jsonl"  # rows refused while reading: {source, location, field, problem}
# {id, source, stage, reason, location, language, passage, claim, label}; reasoning rejects keep the row for V2
TEACHER_REJECTS_FILE = "teacher_rejects.jsonl"
AUGMENT_REJECTS_FILE = (
    "augment_rejects.jsonl"  # {doc_id, row, stage, reason}: documents the teacher wrote no claims for
)


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
        report[name] = {
            "origin": spec.origin,
            "layout": spec.layout,
            "rows_read": result.rows_read,
            "records": len(result.records),
            "rejected": len(result.rejects),
            **(file_identity(Path(spec.path)) if spec.path else {}),
        }
        if result.rejects:
            log.warning(
                "%s: %d of %d rows rejected (listed in %s)", name, len(result.rejects), result.rows_read, REJECTS_FILE
            )
    return records, report, all_rejects


def with_source_lengths(records: list[JudgeRecord]) -> list[JudgeRecord]:
    """Keep each English text's length in `extra` (the teacher keeps `extra`) for the length-ratio check."""
    return [
        replace(
            record,
            extra={
                **record.extra,
                "source_passage_chars": len(record.passage),
                "source_claim_chars": len(record.claim),
            },
        )
        if record.language == "en"
        else record
        for record in records
    ]


def teacher_options(teacher_cfg: DictConfig) -> dict:
    return {key: value for key, value in OmegaConf.to_container(teacher_cfg, resolve=True).items() if key != "enabled"}


def apply_teacher(
    records: list[JudgeRecord], teacher_cfg: DictConfig, work_dir: Path, dry_run: bool, retry_rejects: bool
):
    """Translate and explain with the configured teacher; returns the kept records, a manifest entry and the rejects."""
    from hakim.data.teacher import TeacherSettings, run_teacher
    from hakim.data.teacher.requests import TEMPLATE_VERSION

    options = teacher_options(teacher_cfg)
    result = run_teacher(records, TeacherSettings(**options), work_dir, dry_run=dry_run, retry_rejects=retry_rejects)
    stats = result.stats
    report = {
        "model": options.get("model", TeacherSettings.model),
        "prompt_hash": TEMPLATE_VERSION,  # sha256 of the system and user templates; also part of every cache key
        **stats.cost_report(),
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


def add_teacher_stages(
    budget: FailureBudget,
    read: list[JudgeRecord],
    kept: list[JudgeRecord],
    rejects: list[dict],
    teacher_cfg: DictConfig,
) -> None:
    """Translation is judged on the English rows, reasoning on the rows that reached it."""
    for name in budget.stages:
        mine = [record for record in read if source_name(record.id) == name]
        failed = Counter(reject["stage"] for reject in rejects if reject["source"] == name)
        translated = sum(record.language == "en" for record in mine) if teacher_cfg.translate else 0
        budget.add(name, "translate", failed["translate"], translated)
        if teacher_cfg.reasoning:
            budget.add(name, "reasoning", failed["reasoning"], len(mine) - failed["translate"])
        budget.kept[name] = sum(source_name(record.id) == name for record in kept)


def augment_settings(cfg: DictConfig, teacher_on: bool):
    """The augment group's settings, checked before anything is read or sent; None without augment=..."""
    if not cfg.get("augment"):
        return None
    from hakim.data.perturb.settings import AugmentSettings

    return AugmentSettings.from_config(OmegaConf.to_container(cfg.augment, resolve=True), teacher_on)


def apply_augment(records: list[JudgeRecord], settings, cfg: DictConfig, budget: FailureBudget, work_dir: Path):
    """Synthetic rows from the split records' documents; the synthetic source is budgeted like a real one: a
    teacher that answers too few documents, or no row at all, stops the dataset from being published."""
    from hakim.data.perturb.stage import augment
    from hakim.data.teacher import TeacherSettings

    if settings.teacher_claims and not budget.passed:
        log.warning("augment: teacher claims skipped: a source already failed its budget")
        settings = replace(settings, teacher_claims=False)
    teacher = TeacherSettings(**teacher_options(cfg.teacher)) if settings.teacher_claims else None
    result = augment(records, settings, teacher, work_dir, retry_rejects=cfg.retry_rejects)
    teacher_report = result.report["teacher"]
    if teacher_report:
        budget.add(settings.source, "claims", teacher_report["documents_rejected"], teacher_report["documents_asked"])
    else:
        budget.add(settings.source, "rules", 0, 0)  # no stage to fail, but a source that keeps no row fails
    budget.kept[settings.source] = len(result.records) - result.real_rows_kept
    return result


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
    return datetime.now(UTC).isoformat(timespec="seconds")


def prepare(cfg: DictConfig) -> Path:
    """Returns the version directory written (or the dataset root after a teacher dry run, which writes no data)."""
    started = _now()
    output_root = Path(cfg.output_dir)
    teacher_on = bool(cfg.get("teacher") and cfg.teacher.get("enabled"))
    augmenting = augment_settings(cfg, teacher_on)
    sources = OmegaConf.to_container(cfg.corpus.sources, resolve=True)
    records, source_report, rejects = read_all_sources(sources, cfg.on_bad_row)
    budget = read_budget(source_report, cfg.max_reject_fraction)
    teacher_report, teacher_rejects = None, []
    fractions = OmegaConf.to_container(cfg.splits, resolve=True)
    if teacher_on and cfg.dry_run:
        apply_teacher(
            with_source_lengths(records),
            cfg.teacher,
            output_root / "teacher",
            dry_run=True,
            retry_rejects=cfg.retry_rejects,
        )
        if augmenting is not None and augmenting.teacher_claims:
            from hakim.data.perturb.stage import estimate_written
            from hakim.data.teacher import TeacherSettings

            estimate_written(
                split_by_document(records, fractions, cfg.seed),
                augmenting,
                TeacherSettings(**teacher_options(cfg.teacher)),
                output_root / "teacher",
            )
        log.info("dry run: %d rows read, %d rejected; no dataset written", len(records), len(rejects))
        for line in budget.lines():
            (log.info if budget.passed else log.warning)(line)
        return output_root
    # A source that already failed its budget is not worth paying a teacher for.
    if teacher_on and budget.passed:
        read = records
        records, teacher_report, teacher_rejects = apply_teacher(
            with_source_lengths(read),
            cfg.teacher,
            output_root / "teacher",
            dry_run=False,
            retry_rejects=cfg.retry_rejects,
        )
        add_teacher_stages(budget, read, records, teacher_rejects, cfg.teacher)
    assigned = split_by_document(records, fractions, cfg.seed)
    augment_report, augment_rejects, synthetic_in_eval = None, [], True
    if augmenting is not None:
        result = apply_augment(assigned, augmenting, cfg, budget, output_root / "teacher")
        assigned, augment_report, augment_rejects = result.records, result.report, result.rejects
        # The evaluation subset keeps the original protocol's real rows, unless asked or unless no real row is left.
        synthetic_in_eval = augmenting.in_eval or not result.real_rows_kept
    splits = {name: [record for record in assigned if record.split == name] for name in fractions}
    eval_rows = [record for record in splits[cfg.eval_split] if synthetic_in_eval or not is_synthetic(record)]
    splits["eval"] = evaluation_subset(eval_rows, cfg.eval_per_group)
    checks = quality_checks(splits)
    if checks["documents_in_several_splits"]:
        raise AssertionError(f"split leaked documents: {checks}")
    manifest_extra = {
        "name": cfg.corpus.name,
        "sources": source_report,
        "split_fractions": fractions,
        "seed": cfg.seed,
        "eval_protocol": f"first {cfg.eval_per_group} rows per source × language of the '{cfg.eval_split}' split",
        "rejects": {
            "read": len(rejects),
            "read_file": REJECTS_FILE,
            "teacher": len(teacher_rejects),
            "teacher_file": TEACHER_REJECTS_FILE,
            **({"augment": len(augment_rejects), "augment_file": AUGMENT_REJECTS_FILE} if augmenting else {}),
        },
        "checks": checks,
        "teacher": teacher_report,
        "augment": augment_report,
        "budget": budget.to_dict(),
        "provenance": run_provenance(started),
    }
    files = {REJECTS_FILE: jsonl(rejects), TEACHER_REJECTS_FILE: jsonl(teacher_rejects)}
    if augmenting is not None:
        files[AUGMENT_REJECTS_FILE] = jsonl(augment_rejects)
    target = write_dataset(splits, output_root, manifest_extra, files, point_latest=budget.passed)
    if not budget.passed:
        summary = "\n".join(budget.lines())
        raise BudgetExceeded(
            f"{summary}\nnot published: {target} holds the rows and rejects ({REJECTS_FILE}, {TEACHER_REJECTS_FILE}); "
            f"{output_root / LATEST_POINTER} was left as it was. Fix the source or endpoint and rerun "
            "(retry_rejects=true asks the teacher again for its failures), or raise max_reject_fraction."
        )
    log.info("prepared dataset: %s (%s)", target, {name: len(rows) for name, rows in splits.items()})
    for line in budget.lines():
        log.info(line)
    overview, problems = summary_lines(checks)
    log.info(overview)
    for line in problems:
        log.warning(line)
    return target
