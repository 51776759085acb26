"""How the teacher model is reached, paced, paid for and cached; the API key stays in the environment."""

from __future__ import annotations

from dataclasses import dataclass

from hakim.openai_api import Endpoint, EndpointError


class TeacherError(EndpointError):
    """A problem no retry can fix (missing key, wrong model or endpoint, no Batch API, budget spent); the message
    says what to do."""


@dataclass
class TeacherSettings:
    """Every knob of the teacher stage; safe to print, because the key itself is never a field."""

    model: str = "gpt-4o-mini"  # a stronger teacher writes better Malay and reasoning, at a higher price
    base_url: str | None = None  # None: OpenAI; else any OpenAI-compatible server, e.g. http://localhost:8000/v1
    api_key_env: str = "OPENAI_API_KEY"  # name of the variable holding the key; the key is read only when sending
    translate: bool = True  # English rows -> Malay; off keeps English rows as they are
    reasoning: bool = True  # step-by-step explanations for V3 training; off halves the requests
    reasoning_language: str = "ms"  # language the explanations are written in
    max_in_flight: int = 16  # more: faster until the server pushes back with 429s
    requests_per_minute: int = 500  # keep at or below the account's limit to avoid 429 storms
    tokens_per_minute: int = 200_000  # same, for tokens (prompt + expected output)
    max_retries: int = 6  # per request, after the first try; covers HTTP errors, timeouts and invalid replies
    timeout_s: float = 60.0  # per request; long passages need longer, but a hung request then holds a slot longer
    # (the server may still answer a timed-out request: the cost counts it at max_output_tokens)
    backoff_base_s: float = 1.0  # first retry waits about this long, doubling each time
    backoff_max_s: float = 60.0  # upper bound on one backoff wait (a server's Retry-After is honoured in full)
    temperature: float = 0.2  # low keeps translations faithful; zero makes a regenerated reasoning repeat itself
    max_output_tokens: int = 4096  # long FIB documents need room; a reply cut short is retried
    price_per_million_input: float = 0.15  # USD, for the cost report and dry-run estimate
    price_per_million_output: float = 0.60
    max_cost_usd: float | None = None  # stop (answers so far kept in the cache) before this run would spend more
    batch_api: bool = False  # Files + Batches API: half price, but results may take up to 24 h
    batch_poll_s: float = 30.0  # how often a running batch is polled
    cache_salt: str = ""  # change to force fresh answers for everything without deleting the cache
    progress: bool = True  # live progress bar on stderr

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint.of(self, config="teacher", error=TeacherError)
