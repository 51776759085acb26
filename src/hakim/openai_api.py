"""Talking to an OpenAI-compatible endpoint, for the teacher and the OpenAI judge alike.

One place decides where the key comes from, how the client is built, whether the endpoint is an
OpenAI-compatible API at all (`check_endpoint`, before anything is sent), and when a request is tried
again: 408/409/429/5xx, timeouts and lost connections are retried with capped exponential backoff
(a server's Retry-After is honoured in full); 401/403/404 stop everything at once, because every
request would fail the same way; any other status refuses this one request. The caller's `send`
makes one attempt and may raise InvalidAnswer to have it asked again; `complete` does so for an HTTP
200 that is no chat completion (a web page, a body that is not JSON, no choices), which a proxy or a
struggling server sends now and then.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import TypeVar

import openai
from openai.types.chat import ChatCompletion
from openai.types.chat.chat_completion import Choice

from hakim.errors import HakimError
from hakim.provenance import has_url_credentials, names_a_variable

RETRYABLE_STATUS = (408, 409, 429, 500, 502, 503, 504)
# These mean the key, model or URL is wrong: every request would fail the same way, so stop at once.
FATAL_STATUS = (401, 403, 404)

# The HTTP clients under openai log one INFO line per request: thousands of lines that bury a run's own.
QUIET_LOGGERS = ("httpx", "httpx2")

T = TypeVar("T")

log = logging.getLogger(__name__)


class EndpointError(HakimError, RuntimeError):
    """A problem no retry can fix (missing key, wrong model or endpoint); the message says what to do."""


class NoAnswer(Exception):
    """This request got no usable answer; other requests may still get theirs."""


class Refused(NoAnswer):
    """The endpoint refused this request with a status no retry changes (e.g. 400 for a prompt too long)."""

    def __init__(self, status: int, reason: str = ""):
        super().__init__(f"HTTP {status}: {reason}" if reason else f"HTTP {status}")
        self.status = status


class OutOfRetries(NoAnswer):
    """Every attempt failed; the message names the last problem."""


class InvalidAnswer(Exception):
    """Raised by a caller's `send` for an answer it cannot use (bad JSON, cut short): asked again like a 500."""


@dataclass(frozen=True)
class Endpoint:
    """How one endpoint is reached and retried; safe to print, because the key itself is never a field.

    The teacher and the judge each declare these fields, with their own defaults, at the top level of
    their config block, and hand them over with `Endpoint.of`.
    """

    model: str
    base_url: str | None  # None: OpenAI
    api_key_env: str  # the variable holding the key, read only by `connect`
    timeout_s: float
    max_retries: int  # per request, after the first try
    backoff_base_s: float
    backoff_max_s: float
    max_in_flight: int
    config: str  # the config block these came from ("teacher", "judge"): error messages name its keys
    error: type[EndpointError] = field(default=EndpointError, repr=False)  # the teacher's callers catch TeacherError

    def __post_init__(self):
        # hakim.cli.hydra_callbacks refuses these when written out; a value read from `${oc.env:...}` is only seen here,
        # resolved, and refused before any log line or file could hold it (the message never repeats the value)
        if not names_a_variable(self.api_key_env):
            raise self.error(
                f"{self.config}.api_key_env holds what looks like the key itself: set it to the name of the "
                f"environment variable that holds the key (e.g. {self.config}.api_key_env=OPENAI_API_KEY)"
            )
        if has_url_credentials(self.base_url):
            raise self.error(
                f"{self.config}.base_url holds a user name or password: give the endpoint's URL without "
                f"them, and the key in the environment variable {self.config}.api_key_env names"
            )

    @classmethod
    def of(cls, settings, config: str, error: type[EndpointError] = EndpointError) -> Endpoint:
        shared = {f.name: getattr(settings, f.name) for f in fields(cls) if f.name not in ("config", "error")}
        return cls(**shared, config=config, error=error)

    @property
    def name(self) -> str:
        """What messages call the endpoint."""
        return self.base_url or "the OpenAI API"


def api_key(endpoint: Endpoint) -> str:
    """The key from the environment; a local server without one gets a placeholder it will ignore."""
    key = os.environ.get(endpoint.api_key_env, "")
    if key:
        return key
    if endpoint.base_url is not None:
        return "unused"  # local servers ignore it, but the client insists on one
    raise endpoint.error(
        f"no API key: set the environment variable {endpoint.api_key_env} ({endpoint.config}.api_key_env names it)"
    )


def connect(endpoint: Endpoint) -> openai.AsyncOpenAI:
    """The SDK's retries are off: `with_retries` is the only retry loop, so Retry-After and fatal statuses are ours."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return openai.AsyncOpenAI(
        api_key=api_key(endpoint), base_url=endpoint.base_url, max_retries=0, timeout=endpoint.timeout_s
    )


async def check_endpoint(api: openai.AsyncOpenAI, endpoint: Endpoint) -> None:
    """Raise endpoint.error when the endpoint is unreachable, refuses the key or is no OpenAI-compatible API;
    warn when it does not list the model. One models-list request costs nothing and turns "every row failed
    after minutes of retries" into one line that names the setting to fix."""
    config, name = endpoint.config, endpoint.name
    try:
        raw = await api.models.with_raw_response.list()
    except openai.APIConnectionError as error:
        raise endpoint.error(
            f"{config} endpoint {name} did not answer ({error.__class__.__name__}: {error}); "
            f"check {config}.base_url and that the server is running"
        ) from None
    except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
        raise endpoint.error(
            f"{config} endpoint {name} refused the key (HTTP {error.status_code}): "
            f"check ${endpoint.api_key_env} ({config}.api_key_env names it)"
        ) from None
    except openai.APIStatusError:
        return  # some servers do not list models; the first real request will say if the model is wrong
    served, problem = _listed_models(raw.text, raw.headers.get("content-type", "no content type").split(";")[0])
    if problem:
        raise endpoint.error(
            f"{config} endpoint {name} is not an OpenAI-compatible API: GET /models answered "
            f"{problem}; set {config}.base_url to the API's root (OpenAI, vLLM and Ollama serve "
            "it under /v1)"
        )
    if served and endpoint.model not in served:
        log.warning(
            "%s endpoint %s does not list model %s (it lists %s); requests may fail with HTTP 404",
            config,
            name,
            endpoint.model,
            ", ".join(served[:5]),
        )


def _listed_models(text: str, content_type: str) -> tuple[list[str], str | None]:
    """The model ids of a models-list body, or what the body was instead (a web page, not JSON, other JSON)."""
    if not content_type.endswith("json"):
        return (
            [],
            f"a web page ({content_type})" if "html" in content_type else f"a body that is not JSON ({content_type})",
        )
    try:
        listed = json.loads(text)
    except json.JSONDecodeError:
        return [], f"a body that is not JSON ({content_type})"
    models = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(models, list) or not all(isinstance(model, dict) for model in models):
        return [], "JSON that is not a list of models"
    return [str(model.get("id")) for model in models], None


async def complete(api: openai.AsyncOpenAI, body: dict) -> ChatCompletion:
    """One chat completion; raises InvalidAnswer for a 200 that is not one, so it is asked again like a 500."""
    raw = await api.chat.completions.with_raw_response.create(**body)
    content_type = raw.headers.get("content-type", "no content type").split(";")[0]
    try:
        completion = raw.parse()
    except json.JSONDecodeError:
        raise InvalidAnswer(f"HTTP 200 whose body ({content_type}) is not JSON") from None
    # A body that is not JSON comes back as text, and another API's JSON as a completion without choices.
    if not isinstance(completion, ChatCompletion) or not isinstance(completion.choices, list):
        raise InvalidAnswer(f"HTTP 200 whose body ({content_type}) is not a chat completion")
    return completion


def first_choice(completion: ChatCompletion) -> Choice:
    """Separate from `complete`, so the teacher pays for the tokens of a completion that has no choices."""
    if not completion.choices or completion.choices[0].message is None:
        raise InvalidAnswer("HTTP 200 with a chat completion that has no choices")
    return completion.choices[0]


def server_reason(error: openai.APIStatusError) -> str:
    """The server's own message, on one short line: it often names the parameter to change."""
    body = error.body
    message = body.get("message") if isinstance(body, dict) else None
    return " ".join(str(message).split())[:200] if message else ""


def retry_after_s(error: openai.APIStatusError) -> float | None:
    try:
        return float(error.response.headers.get("retry-after", ""))
    except ValueError:
        return None


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Exponential with jitter, so clients that failed together do not retry together."""
    return min(max_s, base_s * 2**attempt) * random.uniform(0.5, 1.0)


async def with_retries(
    endpoint: Endpoint,
    send: Callable[[int], Awaitable[T]],
    on_failure: Callable[[str, float | None], None] | None = None,
) -> T:
    """`send(attempt)` makes one try (attempt 0 first) and returns its answer; this decides whether to try again.

    `on_failure(cause, retry_after_s)` hears of each failed try: cause is "HTTP 429", "timeout",
    "connection error" or "invalid answer"; retry_after_s is the server's Retry-After, if it sent one.
    Raises endpoint.error on a fatal status, Refused on a status no retry changes, OutOfRetries when
    every try failed.
    """
    problem, wait = "", None
    for attempt in range(endpoint.max_retries + 1):
        if attempt:
            await asyncio.sleep(
                backoff_delay(attempt - 1, endpoint.backoff_base_s, endpoint.backoff_max_s) if wait is None else wait
            )
        wait = None
        try:
            return await send(attempt)
        except openai.APIStatusError as error:
            status = error.status_code
            if status in FATAL_STATUS:
                raise endpoint.error(
                    f"{endpoint.config} endpoint answered HTTP {status}: check {endpoint.config}.model "
                    f"({endpoint.model}), {endpoint.config}.base_url and the key in ${endpoint.api_key_env}"
                ) from None
            if status not in RETRYABLE_STATUS:
                raise Refused(status, server_reason(error)) from None
            cause = problem = f"HTTP {status}"
            wait = retry_after_s(error)
        except openai.APITimeoutError:  # before APIConnectionError, its parent class
            cause, problem = "timeout", f"timeout after {endpoint.timeout_s}s"
        except openai.APIConnectionError:
            cause = problem = "connection error"
        except InvalidAnswer as error:
            cause, problem = "invalid answer", str(error)
        if on_failure is not None:
            on_failure(cause, wait)
    raise OutOfRetries(f"no usable answer after {endpoint.max_retries + 1} attempts; last: {problem}")
