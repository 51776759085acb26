"""`prepare(cfg)`: read sources, optionally translate and explain with a teacher, split by document,
check, and write a versioned dataset. Its output is the only thing training and evaluation read."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from hakim.data.dataset_io import write_dataset
from hakim.data.records import JudgeRecord
from hakim.data.sources import SourceSpec, read_source
from hakim.data.splits import evaluation_subset, shared_documents, split_by_document

log = logging.getLogger(__name__)


def read_all_sources(sources: dict, on_bad_row: str, rejects_path: Path) -> tuple[list[JudgeRecord], dict]:
    records, report, all_rejects = [], {}, []
    for name, options in sources.items():
        spec = SourceSpec(**options)
        result = read_source(spec, on_bad_row=on_bad_row)
        # ids must be unique across sources even when two files share a source and language
        records.extend(replace(record, id=f"{name}-{record.id.rsplit('-', 1)[-1]}") for record in result.records)
        all_rejects.extend({"source": name, **reject} for reject in result.rejects)
        report[name] = {"origin": spec.origin, "rows_read": result.rows_read, "records": len(result.records),
                        "rejected": len(result.rejects)}
        if result.rejects:
            log.warning("%s: %d of %d rows rejected (see %s)", name, len(result.rejects), result.rows_read, rejects_path)
    if all_rejects:
        rejects_path.parent.mkdir(parents=True, exist_ok=True)
        with rejects_path.open("w", encoding="utf-8") as handle:
            for reject in all_rejects:
                handle.write(json.dumps(reject, ensure_ascii=False) + "\n")
    return records, report


def apply_teacher(records: list[JudgeRecord], teacher_cfg: DictConfig, work_dir: Path, dry_run: bool):
    """Translate and explain with the configured teacher; returns the kept records and a manifest entry."""
    from hakim.data.teacher import TeacherSettings, run_teacher
    from hakim.data.teacher.prompts import TEMPLATE_VERSION

    options = {key: value for key, value in OmegaConf.to_container(teacher_cfg, resolve=True).items() if key != "enabled"}
    result = run_teacher(records, TeacherSettings(**options), work_dir, dry_run=dry_run)
    report = {
        "settings": options,
        "prompt_template_version": TEMPLATE_VERSION,
        "stats": result.stats.to_dict(),
        "rejects": len(result.rejects),
        "rejects_file": str(work_dir / "rejects.jsonl") if result.rejects else None,
        "without_reasoning_for_v3": len(result.v3_excluded),
    }
    return result.records, report


def quality_checks(splits: dict[str, list[JudgeRecord]]) -> dict:
    """Problems worth a look before training; reported in the manifest, never silently fixed."""
    everything = [record for name, records in splits.items() if name != "eval" for record in records]
    pairs = Counter((record.passage, record.claim) for record in everything)
    splits_of_pair: dict = {}
    for record in everything:
        splits_of_pair.setdefault((record.passage, record.claim), set()).add(record.split)
    return {
        "documents_in_several_splits": len(shared_documents(everything)),
        "duplicate_rows": sum(count - 1 for count in pairs.values() if count > 1),
        "duplicates_across_splits": sum(1 for found in splits_of_pair.values() if len(found) > 1),
        "rows_with_reasoning": sum(1 for record in everything if record.reasoning),
    }


def prepare(cfg: DictConfig) -> Path:
    output_root = Path(cfg.output_dir)
    sources = OmegaConf.to_container(cfg.dataset.sources, resolve=True)
    records, source_report = read_all_sources(sources, cfg.on_bad_row, output_root / "rejects.jsonl")
    if not records:
        raise ValueError("no rows were read from any source; check conf/dataset")
    teacher_report = None
    if cfg.get("teacher") and cfg.teacher.get("enabled"):
        records, teacher_report = apply_teacher(records, cfg.teacher, output_root / "teacher", dry_run=cfg.dry_run)
        if cfg.dry_run:
            return output_root
    fractions = OmegaConf.to_container(cfg.splits, resolve=True)
    assigned = split_by_document(records, fractions, cfg.seed)
    splits = {name: [record for record in assigned if record.split == name] for name in fractions}
    splits["eval"] = evaluation_subset(splits[cfg.eval_split], cfg.eval_per_group)
    checks = quality_checks(splits)
    if checks["documents_in_several_splits"]:
        raise AssertionError(f"split leaked documents: {checks}")
    manifest_extra = {
        "name": cfg.dataset.name,
        "sources": source_report,
        "split_fractions": fractions,
        "seed": cfg.seed,
        "eval_protocol": f"first {cfg.eval_per_group} rows per source × language of the '{cfg.eval_split}' split",
        "checks": checks,
        "teacher": teacher_report,
    }
    target = write_dataset(splits, output_root, manifest_extra)
    log.info("prepared dataset: %s (%s)", target, {name: len(rows) for name, rows in splits.items()})
    return target
