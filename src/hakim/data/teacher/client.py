"""Asking the teacher one question: cache first, then paced, retried, validated requests."""

from __future__ import annotations

import asyncio

import openai
from pydantic import BaseModel, ValidationError

from hakim.data.teacher.cache import TeacherCache
from hakim.data.teacher.limits import RateLimiter
from hakim.data.teacher.requests import TeacherRequest, response_format
from hakim.data.teacher.result import TeacherStats
from hakim.data.teacher.settings import TeacherSettings
from hakim.openai_api import InvalidAnswer, NoAnswer, complete, first_choice, with_retries


class Rejected(Exception):
    """This question got no usable answer; the reason goes to teacher_rejects.jsonl."""


class OverBudget(Exception):
    """Asking this question could take the run past max_cost_usd; requests already in flight still finish."""


def cost_usd(settings: TeacherSettings, input_tokens: int, output_tokens: int, batch: bool = False) -> float:
    cost = (input_tokens * settings.price_per_million_input + output_tokens * settings.price_per_million_output) / 1e6
    return cost / 2 if batch else cost


def request_body(request: TeacherRequest, settings: TeacherSettings) -> dict:
    """The chat-completions body, the same online and in a batch file."""
    return {
        "model": settings.model,
        "messages": request.messages(),
        "response_format": response_format(request.schema),
        "temperature": settings.temperature,
        "max_completion_tokens": settings.max_output_tokens,
    }


def parse_answer(request: TeacherRequest, content: str | None) -> BaseModel:
    """The answer as its schema's model; raises ValidationError for bad JSON or a wrong shape."""
    return request.schema.model_validate_json(content or "")


def short(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "content"
    return f"invalid answer ({error.error_count()} errors; {where}: {first['msg']})"


class TeacherClient:
    """Each distinct question is answered once per run, even when many rows ask it at the same time."""

    def __init__(
        self,
        settings: TeacherSettings,
        cache: TeacherCache,
        stats: TeacherStats,
        api: openai.AsyncOpenAI,
        retry_rejects: bool = False,
    ):
        self.settings = settings
        self.retry_rejects = retry_rejects
        self.cache = cache
        self.stats = stats
        self.api = api
        self.endpoint = settings.endpoint
        self.limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute)
        self.slots = asyncio.Semaphore(self.endpoint.max_in_flight)
        self._answers: dict[str, asyncio.Task] = {}
        self._sending: set[asyncio.Task] = set()  # requests on the wire, each paid for and cached even if its row stops
        self.used_keys: set[str] = set()  # answers this run's rows rely on, cached or new: what the dataset cost
        self.in_flight = 0  # requests sent and not yet answered, for the progress bar
        self._reserved_usd = 0.0  # estimated cost of requests in flight, so max_cost_usd holds with concurrency

    async def ask(self, request: TeacherRequest) -> BaseModel:
        if request.key not in self._answers:
            self._answers[request.key] = asyncio.create_task(self._answer(request))
        return await self._answers[request.key]

    def cached(self, request: TeacherRequest) -> BaseModel | None:
        hit = self.cache.get(request.key)
        return parse_answer(request, hit.output) if hit else None

    async def _answer(self, request: TeacherRequest) -> BaseModel:
        hit = self.cached(request)
        if hit is not None:
            self.stats.cache_hits += 1
            self.used_keys.add(request.key)
            return hit
        earlier = None if self.retry_rejects else self.cache.failure(request.key)
        if earlier is not None:
            self.stats.failures_reused += 1
            raise Rejected(earlier)
        try:
            answer = await self._fetch(request)
        except Rejected as error:
            self.cache.put_failure(request.key, request.kind, request.user, str(error))
            raise
        self.used_keys.add(request.key)
        return answer

    def reserve(self, upcoming_usd: float) -> None:
        """Refuse to start spending `upcoming_usd` when it could take this run past max_cost_usd."""
        limit = self.settings.max_cost_usd
        if limit is not None and self.stats.cost_usd + self._reserved_usd + upcoming_usd > limit:
            raise OverBudget(
                f"stopped before exceeding teacher.max_cost_usd={limit}: every answer so far is cached, "
                "so raise the limit and rerun to go on"
            )
        self._reserved_usd += upcoming_usd

    def release(self, upcoming_usd: float) -> None:
        """The reserved request is over: its real cost, if any, is in stats.cost_usd now."""
        self._reserved_usd -= upcoming_usd

    async def _fetch(self, request: TeacherRequest) -> BaseModel:
        settings = self.settings
        estimate = request.estimated_input_tokens() + settings.max_output_tokens // 4

        async def attempt(number: int) -> BaseModel:
            if number:
                self.stats.retries += 1
            await self.limiter.acquire(estimate)
            async with self.slots:
                upcoming = cost_usd(settings, request.estimated_input_tokens(), settings.max_output_tokens // 4)
                self.reserve(upcoming)
                self.stats.requests += 1
                sending = asyncio.ensure_future(self._send(request, upcoming, estimate))
                self._sending.add(sending)
                sending.add_done_callback(self._sending.discard)
                # Shielded: a run that stops (a fatal status elsewhere, Ctrl-C) cancels this attempt, but an answer
                # the server is already writing is still paid for and cached, so a rerun does not buy it again.
                return await asyncio.shield(sending)

        try:
            return await with_retries(self.endpoint, attempt, self._failed)
        except NoAnswer as error:
            raise Rejected(str(error)) from None

    async def _send(self, request: TeacherRequest, upcoming: float, estimate: int) -> BaseModel:
        self.in_flight += 1
        try:
            completion = await complete(self.api, request_body(request, self.settings))
        except openai.APITimeoutError:
            # We stopped waiting, but the server may still finish and bill it; priced as if it wrote
            # max_output_tokens, since a request that runs past timeout_s is most likely writing a long answer.
            lost = cost_usd(self.settings, request.estimated_input_tokens(), self.settings.max_output_tokens)
            self.stats.timed_out_cost_usd += lost
            self.stats.cost_usd += lost
            raise
        finally:
            self.in_flight -= 1
            self.release(upcoming)
        return self._accept(request, completion, estimate)

    async def drain(self) -> None:
        """Wait for the requests still on the wire; their answers go to the cache, their failures nowhere."""
        await asyncio.gather(*self._sending, return_exceptions=True)

    def _failed(self, cause: str, retry_after_s: float | None) -> None:
        """Count a failed attempt by cause for the run's summary; a server's Retry-After holds back every request."""
        self.stats.failed_attempts[cause] = self.stats.failed_attempts.get(cause, 0) + 1
        if retry_after_s is not None:
            self.limiter.pause(retry_after_s)

    def _accept(self, request: TeacherRequest, completion, estimate: int) -> BaseModel:
        """Pay for the answer, then validate and cache it; raises InvalidAnswer, saying why, to have it asked again."""
        usage = completion.usage
        used_in, used_out = (usage.prompt_tokens, usage.completion_tokens) if usage else (estimate, 0)
        self.limiter.settle(estimate, used_in + used_out)
        self.stats.input_tokens += used_in
        self.stats.output_tokens += used_out
        self.stats.cost_usd += cost_usd(self.settings, used_in, used_out)
        choice = first_choice(completion)
        if choice.finish_reason == "length":
            raise InvalidAnswer("answer cut off at max_output_tokens")
        try:
            answer = parse_answer(request, choice.message.content)
        except ValidationError as error:
            raise InvalidAnswer(short(error)) from None
        self.store(request, answer, used_in, used_out, via="online")
        return answer

    def store(
        self, request: TeacherRequest, answer: BaseModel, input_tokens: int, output_tokens: int, via: str
    ) -> None:
        self.cache.put(
            request.key, request.kind, request.user, answer.model_dump_json(), input_tokens, output_tokens, via
        )
        self.stats.answers_new += 1
