"""The key lookup and retry loop the teacher and the OpenAI judge share, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from fake_openai_server import MARKER, FakeOpenAI
from hakim.data.teacher import TeacherError, TeacherSettings
from hakim.eval.openai_judge import OpenAISettings
from hakim.openai_api import (
    Endpoint,
    EndpointError,
    InvalidAnswer,
    OutOfRetries,
    Refused,
    api_key,
    backoff_delay,
    complete,
    connect,
    first_choice,
    with_retries,
)

KEY_ENV = "HAKIM_TEST_ENDPOINT_KEY"
SECRET = "sk-endpoint-test-secret-7777"
# The fake server answers a strict "translation" schema with {"text": "[ms] " + the user message}.
TRANSLATION = {"type": "json_schema", "json_schema": {"name": "translation", "strict": True, "schema": {}}}


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


@pytest.fixture
def server():
    with FakeOpenAI(hang_s=1.0) as fake:
        yield fake


def make_endpoint(base_url: str | None, **changes) -> Endpoint:
    options = {
        "model": "judge-test",
        "base_url": base_url,
        "api_key_env": KEY_ENV,
        "timeout_s": 5.0,
        "max_retries": 3,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "max_in_flight": 2,
        "config": "openai",
    }
    return Endpoint(**{**options, **changes})


def ask(endpoint: Endpoint, failures: list | None = None, response_format: dict | None = TRANSLATION) -> str:
    """One question through the shared loop; an answer that is not the expected JSON is asked again."""

    async def run() -> str:
        async with connect(endpoint) as api:

            async def attempt(number: int) -> str:
                body = {"model": endpoint.model, "messages": [{"role": "user", "content": "Sungai itu banjir."}]}
                if response_format:
                    body["response_format"] = response_format
                choice = first_choice(await complete(api, body))
                try:
                    return json.loads(choice.message.content)["text"]
                except ValueError as error:
                    raise InvalidAnswer(f"invalid answer ({error})") from None

            on_failure = None if failures is None else lambda cause, wait: failures.append((cause, wait))
            return await with_retries(endpoint, attempt, on_failure)

    return asyncio.run(run())


def test_retry_after_is_honoured_in_full_even_past_the_backoff_cap(server):
    server.faults_by_number, server.retry_after = {1: "429"}, "0.3"
    failures = []
    started = time.monotonic()

    answer = ask(make_endpoint(server.url, backoff_max_s=0.01), failures)

    assert answer == MARKER + "Sungai itu banjir."
    assert time.monotonic() - started >= 0.3  # the capped backoff alone would have waited at most 0.01 s
    assert failures == [("HTTP 429", 0.3)] and server.total == 2
    assert server.authorizations == {f"Bearer {SECRET}"}


def test_backoff_doubles_with_jitter_up_to_its_cap():
    for attempt in range(8):
        delay = backoff_delay(attempt, base_s=1.0, max_s=30.0)
        expected = min(30.0, 2.0**attempt)
        assert expected / 2 <= delay <= expected


def test_server_errors_timeouts_and_invalid_answers_are_asked_again(server):
    server.faults_by_number = {1: "500", 2: "timeout", 3: "bad_json"}
    failures = []

    answer = ask(make_endpoint(server.url, timeout_s=0.2), failures)

    assert answer == MARKER + "Sungai itu banjir." and server.total == 4
    assert [cause for cause, _ in failures] == ["HTTP 500", "timeout", "invalid answer"]


def test_a_200_that_is_no_chat_completion_is_asked_again_saying_what_came(server):
    server.faults_by_number = {1: "html", 2: "not_json", 3: "other_api", 4: "no_choices"}
    failures = []

    assert (
        ask(make_endpoint(server.url, max_retries=4), failures) == MARKER + "Sungai itu banjir." and server.total == 5
    )
    assert [cause for cause, _ in failures] == ["invalid answer"] * 4

    for fault, problem in [
        ("html", r"HTTP 200 whose body \(text/html\) is not a chat completion"),
        ("not_json", r"HTTP 200 whose body \(application/json\) is not JSON"),
        ("other_api", r"HTTP 200 whose body \(application/json\) is not a chat completion"),
        ("no_choices", "HTTP 200 with a chat completion that has no choices"),
    ]:
        server.faults_by_input = {"": [fault]}
        with pytest.raises(OutOfRetries, match=f"after 1 attempts; last: {problem}$"):
            ask(make_endpoint(server.url, max_retries=0))


def test_out_of_retries_names_the_last_problem(server):
    server.faults_by_number = {1: "503", 2: "bad_json"}
    failures = []

    with pytest.raises(OutOfRetries, match=r"after 2 attempts; last: invalid answer \("):
        ask(make_endpoint(server.url, max_retries=1), failures)
    assert server.total == 2 and [cause for cause, _ in failures] == ["HTTP 503", "invalid answer"]


def test_a_lost_connection_is_retried_then_given_up():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        failures = []
        with pytest.raises(OutOfRetries, match="after 3 attempts; last: connection error"):
            ask(make_endpoint(f"http://127.0.0.1:{closed.getsockname()[1]}/v1", max_retries=2), failures)
    assert failures == [("connection error", None)] * 3


@pytest.mark.parametrize("fault", ["HTTP 401", "HTTP 404"])
def test_a_wrong_key_model_or_url_stops_at_once_naming_what_to_check(server, fault):
    url = server.url
    if fault == "HTTP 401":
        server.faults_by_number = {1: "401"}
    else:
        url = url.replace("/v1", "/wrong")  # a base_url without the API's path: every route is 404
    failures = []

    with pytest.raises(TeacherError) as raised:
        ask(make_endpoint(url, config="teacher", error=TeacherError), failures)

    message = str(raised.value)
    assert f"answered {fault}" in message and SECRET not in message
    assert all(part in message for part in ("teacher.model (judge-test)", "teacher.base_url", f"${KEY_ENV}"))
    assert failures == [] and server.online == (1 if fault == "HTTP 401" else 0)  # never asked again


def test_another_status_refuses_only_this_request(server):
    with pytest.raises(Refused) as raised:
        ask(make_endpoint(server.url), response_format=None)  # the fake server answers 400 without a strict schema

    assert raised.value.status == 400 and server.online == 1  # a 400 is not tried again
    assert str(raised.value) == "HTTP 400: expected strict json_schema response_format"  # the server's reason
    assert ask(make_endpoint(server.url)) == MARKER + "Sungai itu banjir."


def test_a_missing_key_names_the_variable_and_the_config_key_of_its_owner(monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(TeacherError, match=rf"set the environment variable {KEY_ENV} \(teacher.api_key_env names it\)"):
        connect(TeacherSettings(api_key_env=KEY_ENV).endpoint)
    with pytest.raises(EndpointError, match=rf"{KEY_ENV} \(judge.api_key_env names it\)") as judge_error:
        connect(OpenAISettings(api_key_env=KEY_ENV).endpoint)
    assert not isinstance(judge_error.value, TeacherError)
    # A local server needs no key, but the client insists on one.
    assert api_key(make_endpoint("http://127.0.0.1:8000/v1")) == "unused"
