"""Batch API mode: answer what the cache lacks at half price, stage by stage, before the online pass.

Translations go first (reasoning is asked about the Malay text), then reasoning, then one regeneration
for explanations that reached the wrong label. Anything a batch leaves unanswered (failed lines, invalid
answers, an expired batch) is simply not cached, so the online pass that follows asks it with retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path

import openai
from pydantic import ValidationError

from hakim.data.records import JudgeRecord
from hakim.data.teacher.client import TeacherClient, cost_usd, parse_answer, request_body
from hakim.data.teacher.plan import translation_texts
from hakim.data.teacher.progress import progress_bar
from hakim.data.teacher.requests import TeacherRequest, reasoning_request, translation_request
from hakim.data.teacher.settings import TeacherError, TeacherSettings
from hakim.file_writes import write_atomically

RUNNING = ("validating", "in_progress", "finalizing", "cancelling")

log = logging.getLogger(__name__)


async def prefill_with_batches(
    records: list[JudgeRecord], settings: TeacherSettings, client: TeacherClient, work_dir: Path
) -> None:
    texts = translation_texts(records, settings)
    await _run_batch([translation_request(text, settings) for text in texts], settings, client, work_dir)
    if not settings.reasoning:
        return
    for attempt in (0, 1):
        requests = []
        for record in records:
            pair = _malay_pair(record, settings, client)
            if pair is None:
                continue
            if attempt:
                first = client.cached(reasoning_request(*pair, record.label, settings, 0))
                if first is None or first.conclusion_label == record.label:
                    continue
            requests.append(reasoning_request(*pair, record.label, settings, attempt))
        await _run_batch(requests, settings, client, work_dir)


def _malay_pair(record: JudgeRecord, settings: TeacherSettings, client: TeacherClient) -> tuple[str, str] | None:
    """The passage and claim the reasoning will be asked about, or None while a translation is missing."""
    if not (settings.translate and record.language == "en"):
        return record.passage, record.claim
    passage = client.cached(translation_request(record.passage, settings))
    claim = client.cached(translation_request(record.claim, settings))
    return (passage.text, claim.text) if passage and claim else None


async def _run_batch(
    requests: list[TeacherRequest], settings: TeacherSettings, client: TeacherClient, work_dir: Path
) -> None:
    pending = {
        request.key: request
        for request in requests
        if client.cache.get(request.key) is None and (client.retry_rejects or client.cache.failure(request.key) is None)
    }
    if not pending:
        return
    lines = [
        json.dumps(
            {
                "custom_id": key,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": request_body(request, settings),
            },
            ensure_ascii=False,
        )
        for key, request in pending.items()
    ]
    content = ("\n".join(lines) + "\n").encode("utf-8")
    # Named by content, so a run killed while waiting finds and resumes its own batch instead of paying again.
    state = work_dir / f"batch-{hashlib.sha256(content).hexdigest()[:16]}.json"
    # Priced like an online request at half price, so max_cost_usd refuses a batch it could not afford.
    upcoming = sum(
        cost_usd(settings, request.estimated_input_tokens(), settings.max_output_tokens // 4, batch=True)
        for request in pending.values()
    )
    client.reserve(upcoming)
    if state.exists():
        batch_id = json.loads(state.read_text())["batch_id"]
    else:
        batch_id = await _submit(client, content)
        client.stats.requests += len(pending)
        write_atomically(state, json.dumps({"batch_id": batch_id}))
    batch = await _wait(client.api, batch_id, len(pending), settings)
    if batch.status == "completed" and batch.output_file_id:
        output = await client.api.files.content(batch.output_file_id)
        _fill_cache(output.text, pending, settings, client)
    else:
        log.warning(
            "batch %s ended %s: its %d questions will be asked online at full price, ~$%.4f more than the batch price",
            batch_id,
            batch.status,
            len(pending),
            upcoming,
        )
    client.release(upcoming)
    state.unlink()


async def _submit(client: TeacherClient, content: bytes) -> str:
    """Upload the questions and start the batch; an endpoint without a Batch API is told so, not traced back."""
    try:
        uploaded = await client.api.files.create(file=("teacher-batch.jsonl", content), purpose="batch")
        batch = await client.api.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    except (openai.NotFoundError, openai.BadRequestError) as error:
        raise TeacherError(
            f"teacher endpoint {client.endpoint.name} has no Batch API (HTTP {error.status_code} on "
            f"{error.request.url.path}): set teacher.batch_api=false to ask online at full price"
        ) from None
    return batch.id


async def _wait(api: openai.AsyncOpenAI, batch_id: str, size: int, settings: TeacherSettings):
    with progress_bar(settings.progress) as bar:
        task = bar.add_task(f"batch {batch_id}", total=size, status="waiting", unit="req")
        while True:
            try:
                batch = await api.batches.retrieve(batch_id)
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError):
                batch = None  # a blip during a day-long wait is not a reason to give up on the batch
            if batch is not None:
                counts = batch.request_counts
                done = counts.completed + counts.failed if counts else 0
                bar.update(task, completed=done, status=batch.status)
                if batch.status not in RUNNING:
                    return batch
            await asyncio.sleep(settings.batch_poll_s)


def _fill_cache(
    output: str, pending: dict[str, TeacherRequest], settings: TeacherSettings, client: TeacherClient
) -> None:
    stats = client.stats
    for line in output.splitlines():
        try:
            item = json.loads(line)
            request = pending[item["custom_id"]]
            body = item["response"]["body"]
            if item["response"]["status_code"] != 200:
                continue
            usage = body.get("usage") or {}
            used_in, used_out = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
            choice = body["choices"][0]
            finished, content = choice.get("finish_reason"), choice["message"].get("content")
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            continue
        stats.input_tokens += used_in
        stats.output_tokens += used_out
        stats.cost_usd += cost_usd(settings, used_in, used_out, batch=True)
        if finished == "length":
            continue
        try:
            answer = parse_answer(request, content)
        except ValidationError:
            continue
        client.store(request, answer, used_in, used_out, via="batch")
        stats.batch_answers += 1
