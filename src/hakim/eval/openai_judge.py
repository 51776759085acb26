"""A judge behind any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama), asked with Hakim's own prompt.

Every request asks for structured output, a JSON object with the verdict (and the reasoning, for V3),
read by the same strict parser as the local judge. In `logprobs` mode the request also asks for the
top-5 log probabilities at temperature 0, and P(1) comes from the position that wrote the verdict:
a softmax over the log probabilities of "1" and "0" there. When only one of the two is among the
tokens shown, the other gets the largest log probability it could have had and still be left out:
that of the least likely token shown, or the probability mass not shown, whichever is smaller. This
pulls P(1) towards 0.5, never away from it, so a missing digit never makes the judge look surer
than it was. A server that sends no log probabilities gives P(1) = None and the parsed verdict.

The label is P(1) >= threshold when P(1) is known (at 0.5 the digit the model wrote, bar an exact tie, as it
writes the likelier one), else the parsed verdict. An answer that does not parse is asked again like a
500 (so is an HTTP 200 that is no chat completion at all); one that never parses is unparsed.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import openai

from hakim.openai_api import (
    Endpoint,
    EndpointError,
    InvalidAnswer,
    OutOfRetries,
    Refused,
    check_endpoint,
    complete,
    connect,
    first_choice,
    with_retries,
)
from hakim.prompting.answer import LABEL_TOKENS, json_schema, precedes_verdict
from hakim.prompting.prompt import user_message
from hakim.prompting.style import PromptStyle
from hakim.verdict import Thresholds, Verdict, parse_answer

MODES = ("logprobs", "structured")
TOP_LOGPROBS = 5


@dataclass(frozen=True)
class OpenAISettings:
    """How the endpoint is reached; safe to print, because the key itself is never a field."""

    model: str = "gpt-4o-mini"
    base_url: str | None = (
        None  # None: OpenAI; else e.g. http://localhost:8000/v1 (vLLM) or http://localhost:11434/v1 (Ollama)
    )
    api_key_env: str = "OPENAI_API_KEY"  # name of the variable holding the key, read only when sending
    max_in_flight: int = 8  # more: faster until the server answers 429
    use_logprobs: bool = True  # false for servers that refuse the logprobs parameter
    max_retries: int = 5
    timeout_s: float = 60.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    max_output_tokens: int = 384  # V2 needs a few; reasoning-first V3 needs room for the reasoning
    system_prompt: str | None = None  # None: the user message alone, as Hakim's judges were trained

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.of(self, config="judge")


def response_format(style: PromptStyle) -> dict:
    """Structured output: the answer's strict JSON schema (hakim.prompting.answer)."""
    return {"type": "json_schema", "json_schema": {"name": "verdict", "schema": json_schema(style), "strict": True}}


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def verdict_probability(tokens) -> float | None:
    """P(1) at the generated token that is the verdict digit after the verdict key; None if there is none.

    `tokens` are the response's `logprobs.content` entries (token, logprob, top_logprobs).
    """
    text = ""
    for entry in tokens:
        digit = entry.token.strip()
        if digit in LABEL_TOKENS.values() and precedes_verdict(text):
            shown = {(top.token, top.logprob) for top in entry.top_logprobs} | {(entry.token, entry.logprob)}
            by_label = {
                label: [lp for token, lp in shown if token.strip() == LABEL_TOKENS[label]] for label in LABEL_TOKENS
            }
            unseen = min(lp for _, lp in shown)
            mass_shown = sum(math.exp(lp) for _, lp in shown)
            if mass_shown < 1:
                unseen = min(unseen, math.log1p(-mass_shown))
            one, zero = (_logsumexp(by_label[label]) if by_label[label] else unseen for label in (1, 0))
            return 1 / (1 + math.exp(zero - one))
        text += entry.token
    return None


class OpenAIJudge:
    """Same interface as `hakim.eval.judge.Judge`: `judge_batch(items, mode)` → one Verdict per item, in order."""

    modes = MODES

    def __init__(
        self,
        settings: OpenAISettings,
        style: PromptStyle,
        thresholds: Thresholds = Thresholds(),
        name: str | None = None,
    ):
        self.settings = settings
        self.style = style
        self.thresholds = thresholds
        self.name = name or settings.model

    @property
    def default_mode(self) -> str:
        return "logprobs" if self.settings.use_logprobs else "structured"

    def judge(self, passage: str, claim: str, source: str = "default", mode: str | None = None) -> Verdict:
        return self.judge_batch([(passage, claim, source)], mode=mode)[0]

    def judge_batch(self, items: list[tuple[str, str, str]], mode: str | None = None) -> list[Verdict]:
        mode = mode or self.default_mode
        if mode not in MODES:
            raise ValueError(f"an OpenAI judge's mode must be one of {MODES}, got {mode!r}")
        return asyncio.run(self._judge_all(items, mode == "logprobs"))

    async def _judge_all(self, items, logprobs: bool) -> list[Verdict]:
        endpoint = self.settings.endpoint
        async with connect(endpoint) as api:
            await check_endpoint(api, endpoint)
            slots = asyncio.Semaphore(endpoint.max_in_flight)
            return list(await asyncio.gather(*(self._judge_one(api, slots, item, logprobs) for item in items)))

    def _body(self, passage: str, claim: str, source: str, logprobs: bool) -> dict:
        messages = [{"role": "user", "content": user_message(passage, claim, source, self.style)}]
        if self.settings.system_prompt:
            messages.insert(0, {"role": "system", "content": self.settings.system_prompt})
        body = {
            "model": self.settings.model,
            "messages": messages,
            "temperature": 0,
            "response_format": response_format(self.style),
            "max_completion_tokens": self.settings.max_output_tokens,
        }
        if logprobs:
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        return body

    async def _judge_one(self, api: openai.AsyncOpenAI, slots: asyncio.Semaphore, item, logprobs: bool) -> Verdict:
        endpoint, body = self.settings.endpoint, self._body(*item, logprobs)
        unparsed: Verdict | None = None  # the last attempt's answer, when it gave no verdict
        causes: list[str] = []

        async def attempt(number: int) -> Verdict:
            nonlocal unparsed
            unparsed = None
            async with slots:
                completion = await complete(api, body)
            verdict = self._verdict(first_choice(completion), source=item[2])
            if verdict.label is None:
                unparsed = verdict
                raise InvalidAnswer(verdict.parse_error)
            return verdict

        try:
            return await with_retries(endpoint, attempt, lambda cause, _: causes.append(cause))
        except Refused as refused:
            # This item's request is refused (e.g. too long); the row is reported unparsed with why.
            return Verdict(None, None, parse_error=f"request refused: {refused}")
        except OutOfRetries as error:
            if causes[-1] != "invalid answer":
                # An outage is not the judge's answer: stop rather than score it as unparsed rows.
                raise EndpointError(f"judge endpoint {endpoint.name} is failing: {error}") from None
            return Verdict(None, None, raw_output=unparsed.raw_output if unparsed else None, parse_error=str(error))

    def _verdict(self, choice, source: str) -> Verdict:
        if choice.message.content is None:
            return Verdict(None, None, parse_error="no content in the answer (null)")
        text = choice.message.content
        parsed = parse_answer(text)
        if parsed.label is None:
            return Verdict(None, None, raw_output=text, parse_error=parsed.error)
        content = choice.logprobs.content if choice.logprobs else None
        probability = verdict_probability(content) if content else None
        label = parsed.label if probability is None else self.thresholds.label(probability, source)
        return Verdict(label, probability, parsed.reasoning, text)
