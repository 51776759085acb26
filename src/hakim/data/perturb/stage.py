"""The augment stage of prepare_data.py: labelled claims made from the corpus's own documents.

It runs after the split, so the real rows' splits are exactly what they are without it, and each synthetic row
takes its document's doc_id and split: a document's sentences, edited or not, never reach another split, and a
dataset prepared with augment=perturb holds out the same documents as one prepared without it. Rows per document
are capped by max_per_document (rules) and claims_per_document (teacher); then, per split, max_ratio caps the
synthetic rows at that many per real row, taking the documents' units (a rule pair, one teacher row) round-robin
in a seeded document order, so a tight cap still reaches many documents.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from hakim.data.perturb import SYNTHETIC
from hakim.data.perturb.maker import Claim, RuleCounts, rule_claims
from hakim.data.perturb.settings import AugmentError, AugmentSettings
from hakim.data.perturb.text import Document
from hakim.data.perturb.written import PROMPT_VERSION, Written, WrittenOutcome, estimate, key_of, write_claims
from hakim.data.records import JudgeRecord
from hakim.data.teacher.ask import CACHE_FILE, ask_teacher
from hakim.data.teacher.cache import TeacherCache
from hakim.data.teacher.settings import TeacherSettings

log = logging.getLogger(__name__)


@dataclass
class AugmentResult:
    records: list[JudgeRecord]  # the real rows that augment.keep_real_rows keeps, then the synthetic ones
    real_rows_kept: int
    report: dict  # manifest.json's `augment`
    rejects: list[dict]


def documents_of(records: list[JudgeRecord], splits: tuple[str, ...]) -> list[Document]:
    """Each distinct passage of the corpus once, with the rows that read it (a bilingual twin shares its original's
    doc_id but not its text, so the two are separate documents of one split)."""
    rows: dict[tuple[str, str], list[JudgeRecord]] = defaultdict(list)
    for record in records:
        if record.split in splits:
            rows[(record.doc_id, record.passage)].append(record)
    return [
        Document(doc_id, passage, group[0].language, group[0].split, group) for (doc_id, passage), group in rows.items()
    ]


def _record(
    settings: AugmentSettings,
    document: Document,
    rule: str,
    label: int,
    claim: str,
    passage: str,
    suffix: str,
    details: dict,
) -> JudgeRecord:
    row = document.rows[0]
    return JudgeRecord(
        id=f"{settings.source}-{row.id}.{suffix}.{rule}",
        source=settings.source,
        language=document.language,
        passage=passage,
        claim=claim,
        label=label,
        doc_id=document.doc_id,
        split=document.split,
        extra={
            "origin": row.extra.get("origin"),
            SYNTHETIC: {"rule": rule, "row": row.id, "row_source": row.source, **details},
        },
    )


def _rule_unit(settings: AugmentSettings, document: Document, unit: list[Claim]) -> list[JudgeRecord]:
    records = [
        _record(
            settings,
            document,
            claim.rule,
            claim.label,
            claim.claim,
            document.passage,
            f"s{claim.sentence.index + 1:02d}",
            {"sentence": claim.sentence.index, "sentence_text": claim.sentence.text, "change": claim.change},
        )
        for claim in unit
    ]
    if len(records) == 2:  # a minimal pair: each names the other
        first, second = records
        records = [_with(first, pair=second.id), _with(second, pair=first.id)]
    return records


def _with(record: JudgeRecord, **details) -> JudgeRecord:
    return JudgeRecord(
        **{**record.to_dict(), "extra": {**record.extra, SYNTHETIC: {**record.extra[SYNTHETIC], **details}}}
    )


def _written_unit(settings: AugmentSettings, document: Document, row: Written, model: str) -> list[JudgeRecord]:
    return [
        _record(
            settings,
            document,
            row.rule,
            row.label,
            row.claim,
            row.passage,
            f"c{row.number:02d}",
            {**row.details, "model": model},
        )
    ]


def _rank(seed: int, doc_id: str) -> str:
    return hashlib.sha256(f"{seed}:augment:{doc_id}".encode()).hexdigest()


def _capped(
    units: dict[str, list[list[JudgeRecord]]], documents: list[Document], real_rows: Counter, settings: AugmentSettings
) -> tuple[list[JudgeRecord], dict[str, int]]:
    """Round-robin over the documents of each split (in a seeded order) until max_ratio × real rows is reached."""
    kept, dropped = [], Counter()
    by_split: dict[str, list[Document]] = defaultdict(list)
    for document in sorted(documents, key=lambda document: _rank(settings.seed, key_of(document))):
        by_split[document.split].append(document)
    for split, members in by_split.items():
        cap = None if settings.max_ratio is None else int(settings.max_ratio * real_rows[split])
        taken, depth = 0, max((len(units[key_of(document)]) for document in members), default=0)
        for level in range(depth):
            for document in members:
                mine = units[key_of(document)]
                if level >= len(mine):
                    continue
                if cap is not None and taken + len(mine[level]) > cap:
                    dropped[split] += len(mine[level])
                    continue
                kept.extend(mine[level])
                taken += len(mine[level])
    return kept, dict(sorted(dropped.items()))


def _teacher_report(outcome: WrittenOutcome, stats, teacher: TeacherSettings, documents: int) -> dict:
    return {
        "model": teacher.model,
        "prompt_hash": PROMPT_VERSION,
        "documents_asked": documents,
        "documents_rejected": sum(reject["stage"] == "claims" for reject in outcome.rejects),
        "removal_checks_rejected": sum(reject["stage"] == "removal_check" for reject in outcome.rejects),
        "claims_refused": dict(sorted(outcome.refused.items())),
        **stats.cost_report(),
    }


def augment(
    records: list[JudgeRecord],
    settings: AugmentSettings,
    teacher: TeacherSettings | None,
    work_dir: Path,
    retry_rejects: bool = False,
) -> AugmentResult:
    """`records` carry their splits; returns them with the synthetic rows added (see the module docstring)."""
    clash = sorted({record.source for record in records if record.source == settings.source})
    if clash:
        raise AugmentError(
            f"augment.source: {clash[0]!r} is a source of the corpus; synthetic rows need a name of their own"
        )
    if isinstance(settings.keep_real_rows, tuple):
        sources = {record.source for record in records}
        unknown = sorted(set(settings.keep_real_rows) - sources)
        if unknown:
            known = ", ".join(sorted(sources))
            raise AugmentError(f"augment.keep_real_rows: no source {unknown[0]!r} in the corpus (its sources: {known})")
    documents = documents_of(records, settings.splits)
    counts, used = RuleCounts(), Counter()
    units: dict[str, list[list[JudgeRecord]]] = {}
    for document in documents:
        claims = rule_claims(
            document,
            list(settings.rules),
            settings.max_per_document,
            settings.min_words,
            settings.max_words,
            settings.seed,
            counts,
            used,
        )
        units[key_of(document)] = [_rule_unit(settings, document, unit) for unit in claims]
    teacher_report, rejects = None, []
    if settings.teacher_claims:

        async def plan(client):
            return await write_claims(
                client,
                documents,
                settings.claims_per_document,
                settings.min_words,
                settings.removals,
                settings.check_removals,
            )

        outcome, stats = ask_teacher(teacher, work_dir, plan, retry_rejects)
        for document in documents:
            units[key_of(document)] += [
                _written_unit(settings, document, row, teacher.model) for row in outcome.rows.get(key_of(document), [])
            ]
        teacher_report, rejects = _teacher_report(outcome, stats, teacher, len(documents)), outcome.rejects
    real_rows = Counter(record.split for record in records)
    synthetic, dropped = _capped(units, documents, real_rows, settings)
    rows, labels = defaultdict(Counter), defaultdict(Counter)
    for record in synthetic:
        rule = record.extra[SYNTHETIC]["rule"]
        rows[record.split][rule] += 1
        labels[record.split][str(record.label)] += 1
        counts.kept[rule] += 1
    report = {
        "source": settings.source,
        "settings": asdict(settings),
        "documents": {"read": len(documents), "with_rows": len({record.doc_id for record in synthetic})},
        "rows": {split: dict(sorted(found.items())) for split, found in sorted(rows.items())},
        "labels": {split: dict(sorted(found.items())) for split, found in sorted(labels.items())},
        "dropped_by_max_ratio": dropped,
        "rules": counts.to_dict(),
        "teacher": teacher_report,
    }
    kept = [record for record in records if settings.keeps(record)]
    log.info(
        "augment: %d synthetic rows from %d documents (%s)",
        len(synthetic),
        report["documents"]["with_rows"],
        ", ".join(f"{split} {sum(found.values())}" for split, found in report["rows"].items()),
    )
    return AugmentResult(records=[*kept, *synthetic], real_rows_kept=len(kept), report=report, rejects=rejects)


def estimate_written(
    records: list[JudgeRecord], settings: AugmentSettings, teacher: TeacherSettings, work_dir: Path
) -> dict:
    """The dry run's count of claim requests cached and to send, on the passages as read (before any translation)."""
    documents = documents_of(records, settings.splits)
    path = Path(work_dir) / CACHE_FILE
    cache = TeacherCache(path) if path.exists() else None
    try:
        found = estimate(
            documents,
            settings.claims_per_document,
            teacher,
            lambda request: cache is not None and cache.get(request.key) is not None,
        )
    finally:
        if cache is not None:
            cache.close()
    log.info(
        "augment dry run: teacher claims for %d documents: %d cached, %d to send, ~%d input + ~%d output tokens, "
        "~$%.4f (removal checks not included: they depend on the answers)",
        found["documents"],
        found["cached"],
        found["to_send"],
        found["input_tokens"],
        found["output_tokens"],
        found["cost_usd"],
    )
    return found
