"""The teacher stage: translate English rows to Malay, then have the teacher explain each gold label."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from hakim.data.records import JudgeRecord
from hakim.data.teacher.ask import CACHE_FILE, count_answers
from hakim.data.teacher.batch import prefill_with_batches
from hakim.data.teacher.cache import TeacherCache
from hakim.data.teacher.client import OverBudget, Rejected, TeacherClient
from hakim.data.teacher.plan import count_deduplication, estimate
from hakim.data.teacher.progress import progress_bar
from hakim.data.teacher.requests import reasoning_request, translation_request
from hakim.data.teacher.result import TeacherResult, TeacherStats
from hakim.data.teacher.settings import TeacherError, TeacherSettings
from hakim.file_writes import jsonl, write_atomically
from hakim.openai_api import check_endpoint, connect

UNANSWERED_FILE = "unanswered.jsonl"  # in the work dir: the questions that got no usable answer, and why
STATS_FILE = "teacher_stats.json"

log = logging.getLogger(__name__)


@dataclass
class _RowOutcome:
    record: JudgeRecord | None
    rejects: list[dict] = field(default_factory=list)
    v3_excluded: bool = False


def run_teacher(
    records: list[JudgeRecord],
    settings: TeacherSettings,
    work_dir: Path,
    dry_run: bool = False,
    retry_rejects: bool = False,
) -> TeacherResult:
    """Translate and explain `records`, resuming from work_dir's cache; dry_run only estimates and sends nothing.

    Questions that failed in an earlier run fail again from the cache unless retry_rejects asks them again."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    stats = TeacherStats(rows=len(records))
    count_deduplication(records, settings, stats)
    if dry_run:
        asyncio.run(_preflight(settings))
        _dry_run(records, settings, stats, work_dir / CACHE_FILE, retry_rejects)
        return TeacherResult(records=list(records), stats=stats)
    started = time.monotonic()
    cache = TeacherCache(work_dir / CACHE_FILE)
    try:
        outcomes, used_keys = asyncio.run(_teach(records, settings, cache, stats, work_dir, retry_rejects))
        count_answers(cache.usage(used_keys), settings, stats)
    finally:
        cache.close()
    result = TeacherResult(records=[o.record for o in outcomes if o.record is not None], stats=stats)
    result.v3_excluded = [o.record.id for o in outcomes if o.v3_excluded]
    result.rejects = [reject for o in outcomes for reject in o.rejects]
    stats.rows_out = len(result.records)
    stats.elapsed_s = time.monotonic() - started
    stats.rows_per_s = len(records) / stats.elapsed_s if stats.elapsed_s else 0.0
    write_atomically(work_dir / UNANSWERED_FILE, jsonl(result.rejects))
    write_atomically(work_dir / STATS_FILE, json.dumps(stats.to_dict(), indent=2) + "\n")
    log.info(summary(stats, result.rejects))
    return result


def summary(stats: TeacherStats, rejects: list[dict]) -> str:
    """One line at the end of a run: what was sent, what failed and why, what it cost."""
    causes = ", ".join(f"{cause} {n}" for cause, n in sorted(stats.failed_attempts.items())) or "none"
    stages = Counter(reject["stage"] for reject in rejects)
    rejected = ", ".join(f"{stage} {n}" for stage, n in sorted(stages.items())) or "none"
    timed_out = stats.failed_attempts.get("timeout", 0)
    estimated = f" (~${stats.timed_out_cost_usd:.4f} of it for {timed_out} timed-out attempts)" if timed_out else ""
    return (
        f"teacher: {stats.rows} rows in, {stats.rows_out} out; {stats.requests} requests sent "
        f"({stats.retries} retries; failed attempts: {causes}), {stats.cache_hits} answers from the cache, "
        f"{stats.failures_reused} earlier failures reused; rejects: {rejected}; "
        f"${stats.cost_usd:.4f} this run{estimated}, ${stats.answers_cost_usd:.4f} for all the answers kept"
    )


async def _preflight(settings: TeacherSettings) -> None:
    api = connect(settings.endpoint)
    try:
        await check_endpoint(api, settings.endpoint)
    finally:
        await api.close()


def _dry_run(records, settings: TeacherSettings, stats: TeacherStats, cache_path: Path, retry_rejects: bool) -> None:
    cache = TeacherCache(cache_path) if cache_path.exists() else None
    try:
        estimate(records, settings, stats, cache, retry_rejects)
    finally:
        if cache is not None:
            cache.close()
    log.info(
        "teacher dry run (%s at %s, key and endpoint checked): %d cached, %d to send, %d failed before "
        "(retry_rejects=true sends them), ~%d input + ~%d output tokens, ~$%.4f "
        "(regenerations of wrong reasoning not included)",
        settings.model,
        settings.endpoint.name,
        stats.estimated_cached,
        stats.estimated_requests,
        stats.estimated_failed_before,
        stats.estimated_input_tokens,
        stats.estimated_output_tokens,
        stats.estimated_cost_usd,
    )


async def _teach(records, settings, cache, stats, work_dir, retry_rejects) -> tuple[list[_RowOutcome], set[str]]:
    api = connect(settings.endpoint)
    client = TeacherClient(settings, cache, stats, api, retry_rejects)
    try:
        await check_endpoint(api, settings.endpoint)
        try:
            if settings.batch_api:
                await prefill_with_batches(records, settings, client, work_dir)
            outcomes = await _ask_online(records, settings, client)
        except OverBudget as stop:
            raise TeacherError(f"{stop} (${stats.cost_usd:.4f} spent in this run)") from None
        return outcomes, client.used_keys
    finally:
        await client.drain()
        await api.close()


async def _ask_online(
    records: list[JudgeRecord], settings: TeacherSettings, client: TeacherClient
) -> list[_RowOutcome]:
    """Every row at once (the client paces them); a row stopped by max_cost_usd lets the others in flight finish."""
    stats, rejected, stopped = client.stats, Counter(), []
    with progress_bar(settings.progress) as bar:
        rows = bar.add_task("teacher", total=len(records), status="")

        async def one(record: JudgeRecord) -> _RowOutcome | None:
            try:
                outcome = await _teach_row(record, settings, client)
            except OverBudget as stop:
                stopped.append(stop)
                return None
            rejected.update(reject["stage"] for reject in outcome.rejects)
            status = (
                f"{client.in_flight} in flight, {stats.retries} retries, {sum(rejected.values())} rejects, "
                f"{stats.cache_hits} cached, ${stats.cost_usd:.4f}"
            )
            bar.update(rows, advance=1, status=status)
            return outcome

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(record)) for record in records]
        except* TeacherError as failure:
            raise failure.exceptions[0] from None
    if stopped:
        raise stopped[0]
    return [task.result() for task in tasks]


async def _teach_row(record: JudgeRecord, settings: TeacherSettings, client: TeacherClient) -> _RowOutcome:
    if settings.translate and record.language == "en":
        try:
            passage = await _translate(record.passage, "passage", settings, client)
            claim = await _translate(record.claim, "claim", settings, client)
        except Rejected as error:
            client.stats.translation_failed += 1
            return _RowOutcome(None, [_reject(record, "translate", str(error))])
        extra = {**record.extra, "translated_by": settings.model}
        record = replace(record, language="ms", passage=passage, claim=claim, extra=extra)
    if not settings.reasoning:
        return _RowOutcome(record)
    return await _explain(record, settings, client)


async def _translate(text: str, what: str, settings: TeacherSettings, client: TeacherClient) -> str:
    try:
        return (await client.ask(translation_request(text, settings))).text
    except Rejected as error:
        raise Rejected(f"{what}: {error}") from None


async def _explain(record: JudgeRecord, settings: TeacherSettings, client: TeacherClient) -> _RowOutcome:
    """Ask twice at most; an explanation that reaches the wrong label is never kept."""
    for attempt in (0, 1):
        if attempt:
            client.stats.reasoning_regenerated += 1
        try:
            answer = await client.ask(reasoning_request(record.passage, record.claim, record.label, settings, attempt))
        except Rejected as error:
            client.stats.reasoning_failed += 1
            return _without_reasoning(record, str(error))
        if answer.conclusion_label == record.label:
            return _RowOutcome(replace(record, reasoning=answer.text()))
    client.stats.reasoning_disagreed += 1
    reason = f"teacher concluded {answer.conclusion_label} twice; gold label is {record.label}"
    return _without_reasoning(record, reason, stage="reasoning_check")


def _without_reasoning(record: JudgeRecord, reason: str, stage: str = "reasoning") -> _RowOutcome:
    """Still a good V2 row (passage, claim, label); only V3, which trains on reasoning, must skip it."""
    kept = replace(record, reasoning=None, extra={**record.extra, "reasoning_rejected": reason})
    return _RowOutcome(kept, [_reject(record, stage, reason)], v3_excluded=True)


def _reject(record: JudgeRecord, stage: str, reason: str) -> dict:
    """stage: translate (row dropped), reasoning (no answer) or reasoning_check (answered the wrong label);
    the row's text as it was asked and its file:line let a person check it or ask again."""
    return {
        "id": record.id,
        "stage": stage,
        "reason": reason,
        "location": record.extra.get("origin"),
        "language": record.language,
        "passage": record.passage,
        "claim": record.claim,
        "label": record.label,
    }
