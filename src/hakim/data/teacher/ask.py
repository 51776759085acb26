"""Ask the teacher any questions, with the translation stage's cache, pacing, retries and max_cost_usd.

Other stages (the written claims of hakim.data.perturb) hand `ask_teacher` a plan: an async function that gets
a connected TeacherClient and asks what it needs, in as many rounds as it likes. A question that gets no usable
answer comes back as its Rejected error, remembered in the cache like the translation stage's; a fatal status
(a wrong key) or the cost limit stops the whole plan with a TeacherError.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from hakim.data.teacher.cache import TeacherCache
from hakim.data.teacher.client import OverBudget, Rejected, TeacherClient, cost_usd
from hakim.data.teacher.requests import TeacherRequest
from hakim.data.teacher.result import TeacherStats
from hakim.data.teacher.settings import TeacherError, TeacherSettings
from hakim.openai_api import check_endpoint, connect

CACHE_FILE = "teacher_cache.sqlite"  # shared with the translation stage: one cache per dataset

T = TypeVar("T")


async def ask_each(client: TeacherClient, requests: list[TeacherRequest]) -> list[BaseModel | Rejected]:
    """Every request at once (the client paces them), each answer or Rejected error in the requests' order."""

    async def one(request: TeacherRequest) -> BaseModel | Rejected:
        try:
            return await client.ask(request)
        except Rejected as error:
            return error

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(request)) for request in requests]
    except* TeacherError as failure:
        raise failure.exceptions[0] from None
    except* OverBudget as stop:
        raise TeacherError(f"{stop.exceptions[0]} (${client.stats.cost_usd:.4f} spent in this run)") from None
    return [task.result() for task in tasks]


def count_answers(usage: list[tuple[int, int, str]], settings: TeacherSettings, stats: TeacherStats) -> None:
    """What the kept answers cost, whichever run paid for them (a cached rerun costs what the first run did)."""
    stats.answers_used = len(usage)
    stats.answers_input_tokens = sum(used_in for used_in, _, _ in usage)
    stats.answers_output_tokens = sum(used_out for _, used_out, _ in usage)
    stats.answers_cost_usd = sum(
        cost_usd(settings, used_in, used_out, batch=via == "batch") for used_in, used_out, via in usage
    )


def ask_teacher(
    settings: TeacherSettings,
    work_dir: Path,
    plan: Callable[[TeacherClient], Awaitable[T]],
    retry_rejects: bool = False,
) -> tuple[T, TeacherStats]:
    """Run `plan` against the configured endpoint (checked first) and return its result and the run's stats."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    stats = TeacherStats()
    cache = TeacherCache(work_dir / CACHE_FILE)

    async def run() -> tuple[T, set[str]]:
        api = connect(settings.endpoint)
        client = TeacherClient(settings, cache, stats, api, retry_rejects)
        try:
            await check_endpoint(api, settings.endpoint)
            return await plan(client), client.used_keys
        finally:
            await client.drain()
            await api.close()

    try:
        result, used_keys = asyncio.run(run())
        count_answers(cache.usage(used_keys), settings, stats)
    finally:
        cache.close()
    return result, stats
