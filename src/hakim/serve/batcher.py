"""Many callers, one model: rows from concurrent requests are gathered into batches and judged one model
call at a time.

A batch starts when `max_batch` rows of one mode are waiting, or when the oldest waiting row has waited
`max_wait_ms`; within it `judge_batch` sorts rows by length, as everywhere else. The queue is bounded in
rows: a request that would overflow it is refused at once (QueueFull), so a burst costs callers a retry,
not the server its memory. The model runs in one worker thread, so the event loop keeps accepting and
answering while it computes.

A row the judge cannot take (a claim too long even without its passage: ValueError) fails alone; the
other rows of its batch are judged again without it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from hakim.verdict import Verdict

Item = tuple[str, str, str]


class QueueFull(Exception):
    """More rows than the queue may hold; the caller should retry later."""


@dataclass(frozen=True)
class Unjudged:
    """A row the judge refused, with its reason (say, a claim too long to fit)."""

    reason: str


@dataclass
class _Job:
    future: asyncio.Future
    results: list
    remaining: int


@dataclass
class _Row:
    job: _Job
    index: int
    item: Item
    mode: str
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    rows_admitted: int = 0
    model_calls: int = 0
    rows_judged: int = 0
    largest_batch: int = 0


class Batcher:
    def __init__(
        self,
        judge_batch: Callable[[list[Item], str], list[Verdict]],
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
    ):
        self.judge_batch = judge_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._queue: deque[_Row] = deque()
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hakim-judge")
        self._worker: asyncio.Task | None = None

    @property
    def queued_rows(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """After the server has finished its requests: no row is left waiting."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def judge(self, items: list[Item], mode: str) -> list[Verdict | Unjudged]:
        """One result per item, in order. Raises QueueFull at once when the rows do not fit in the queue."""
        if len(self._queue) + len(items) > self.max_queue:
            raise QueueFull(f"{len(self._queue)} rows are waiting (max_queue={self.max_queue})")
        job = _Job(asyncio.get_running_loop().create_future(), [None] * len(items), len(items))
        self.stats.rows_admitted += len(items)
        self._queue.extend(_Row(job, index, item, mode) for index, item in enumerate(items))
        self._arrived.set()
        return await job.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            oldest = self._queue[0]
            while self._waiting(oldest.mode) < self.max_batch:
                left = oldest.arrived + self.max_wait_s - time.monotonic()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except TimeoutError:
                    break
            batch = self._take(oldest.mode)
            try:
                results = await loop.run_in_executor(
                    self._executor, self._judge_rows, [r.item for r in batch], oldest.mode
                )
            except Exception as error:  # a broken model, not a bad row: every request in the batch fails with it
                for row in batch:
                    if not row.job.future.done():
                        row.job.future.set_exception(error)
                continue
            self.stats.model_calls += 1
            self.stats.rows_judged += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            for row, result in zip(batch, results, strict=True):
                self._deliver(row, result)

    def _waiting(self, mode: str) -> int:
        return sum(1 for row in self._queue if row.mode == mode)

    def _take(self, mode: str) -> list[_Row]:
        """Up to max_batch rows of `mode`, oldest first; rows of other modes keep their places."""
        taken, kept = [], deque()
        while self._queue:
            row = self._queue.popleft()
            (taken if row.mode == mode and len(taken) < self.max_batch else kept).append(row)
        self._queue = kept
        return taken

    def _judge_rows(self, items: list[Item], mode: str) -> list[Verdict | Unjudged]:
        try:
            return self.judge_batch(items, mode)
        except ValueError as error:
            if len(items) == 1:
                return [Unjudged(str(error))]
        return [result for item in items for result in self._judge_rows([item], mode)]

    @staticmethod
    def _deliver(row: _Row, result: Verdict | Unjudged) -> None:
        job = row.job
        if job.future.done():  # another of its batches failed, or the caller went away
            return
        job.results[row.index] = result
        job.remaining -= 1
        if job.remaining == 0:
            job.future.set_result(job.results)
