"""The teacher stage against a real local HTTP server: faults, de-duplication, reasoning checks, secrecy, resume."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fake_openai_server import MARKER, FakeOpenAI
from hakim.data.records import JudgeRecord, document_id
from hakim.data.teacher import TeacherError, TeacherSettings, run_teacher
from hakim.data.teacher.client import cost_usd
from hakim.data.teacher.limits import RateLimiter
from hakim.data.teacher.requests import translation_request

KEY_ENV = "HAKIM_TEACHER_TEST_KEY"
SECRET = "sk-test-DO-NOT-LEAK-4242"
SRC = Path(__file__).resolve().parents[1] / "src"


def make_records(passages: int, claims_per_passage: int, language: str = "en") -> list[JudgeRecord]:
    """FIB-like rows: each passage repeats once per claim."""
    rows = []
    for p in range(passages):
        passage = f"Passage {p} says the river {p} floods every spring."
        for c in range(claims_per_passage):
            rows.append(
                JudgeRecord(
                    id=f"{language}-{p}-{c}",
                    source="fib",
                    language=language,
                    passage=passage,
                    claim=f"Claim {c} about river {p}.",
                    label=(p + c) % 2,
                    doc_id=document_id("fib", passage),
                )
            )
    return rows


@pytest.fixture
def server():
    with FakeOpenAI(hang_s=1.0) as fake:
        yield fake


@pytest.fixture
def settings(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return TeacherSettings(
        base_url=server.url,
        api_key_env=KEY_ENV,
        max_in_flight=4,
        timeout_s=0.5,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        progress=False,
    )


def test_rate_limiter_paces_requests_tokens_and_retry_after():
    async def seconds_for(limiter: RateLimiter, calls: list[int]) -> float:
        started = time.monotonic()
        for tokens in calls:
            await limiter.acquire(tokens)
        return time.monotonic() - started

    assert asyncio.run(seconds_for(RateLimiter(1200, 10**6), [1] * 1200)) < 0.5  # a minute's allowance at once
    assert asyncio.run(seconds_for(RateLimiter(1200, 10**6), [1] * 1204)) >= 0.15  # then 20 per second
    assert asyncio.run(seconds_for(RateLimiter(10**6, 6000), [6000, 20])) >= 0.15  # 100 tokens per second

    async def paused() -> float:
        limiter = RateLimiter(10**6, 10**6)
        limiter.pause(0.2)
        return await seconds_for(limiter, [1])

    assert asyncio.run(paused()) >= 0.19


def read_rejects(work_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (work_dir / "unanswered.jsonl").read_text().splitlines()]


def cached_inputs(work_dir: Path) -> set[str]:
    db = sqlite3.connect(work_dir / "teacher_cache.sqlite")
    try:
        return {row[0] for row in db.execute("SELECT input FROM answers")}
    finally:
        db.close()


def test_each_unique_passage_and_claim_is_translated_once(server, settings, tmp_path):
    settings.reasoning = False
    records = make_records(passages=3, claims_per_passage=4) + make_records(1, 2, language="ms")

    result = run_teacher(records, settings, tmp_path)

    assert server.by_kind["translation"] == 3 + 12
    assert result.stats.requests == result.stats.translation_requests == 15
    assert result.stats.unique_passages == 3 and result.stats.rows_to_translate == 12
    assert result.stats.whole_row_requests == 12
    assert result.stats.tokens_saved > 0  # each passage's tokens are paid once, not four times
    by_id = {r.id: r for r in result.records}
    assert [r.id for r in result.records] == [r.id for r in records]
    original = records[5]
    assert by_id[original.id].passage == MARKER + original.passage
    assert by_id[original.id].claim == MARKER + original.claim
    assert by_id[original.id].language == "ms" and by_id[original.id].doc_id == original.doc_id
    assert by_id["ms-0-1"] == records[-1]
    assert result.stats.cost_usd > 0 and result.stats.input_tokens > 0


def test_run_completes_despite_every_fault_kind(server, settings, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    records = make_records(passages=3, claims_per_passage=2)
    server.faults_by_input = {
        "Passage 0 says": ["429"],
        "Passage 1 says": ["500", "503"],
        "Claim 0 about river 2.": ["timeout"],
        "Claim 1 about river 2.": ["bad_json", "bad_schema"],
        "Claim 0 about river 1.\n": ["length"],
    }
    server.faults_by_number = {1: "500"}
    server.retry_after = "1"
    started = time.monotonic()

    result = run_teacher(records, settings, tmp_path)

    assert time.monotonic() - started >= 1.0  # the 429's Retry-After was honoured
    assert result.rejects == [] and result.v3_excluded == []
    assert len(result.records) == len(records)
    assert all(r.language == "ms" and r.passage.startswith(MARKER) and r.reasoning for r in result.records)
    assert result.stats.retries == 8
    assert server.by_input[records[4].claim] == 2  # the timed-out request was asked again
    assert read_rejects(tmp_path) == []
    assert result.stats.failed_attempts == {
        "HTTP 429": 1,
        "HTTP 500": 2,
        "HTTP 503": 1,
        "timeout": 1,
        "invalid answer": 3,
    }
    assert not any("HTTP Request" in message for message in caplog.messages)  # no line per request
    assert (
        caplog.messages[-1].startswith("teacher: 6 rows in, 6 out;")
        and "retries; failed attempts: HTTP 429 1, HTTP 500 2" in caplog.messages[-1]
    )


def test_exhausted_retries_land_in_rejects_never_in_data(server, settings, tmp_path):
    settings.max_retries = 2
    records = make_records(passages=2, claims_per_passage=2)
    server.faults_by_input = {"Claim 1 about river 0.": ["bad_schema"] * 3, "Claim 0 about river 1.\n": ["500"] * 3}

    result = run_teacher(records, settings, tmp_path)

    rejects = read_rejects(tmp_path)
    assert rejects == result.rejects
    assert {(r["id"], r["stage"]) for r in rejects} == {("en-0-1", "translate"), ("en-1-0", "reasoning")}
    by_id = {r["id"]: r["reason"] for r in rejects}
    assert "claim" in by_id["en-0-1"] and "invalid answer" in by_id["en-0-1"] and "3 attempts" in by_id["en-0-1"]
    assert "HTTP 500" in by_id["en-1-0"]
    assert [r.id for r in result.records] == ["en-0-0", "en-1-0", "en-1-1"]
    kept = {r.id: r for r in result.records}["en-1-0"]
    assert kept.reasoning is None and "HTTP 500" in kept.extra["reasoning_rejected"]
    assert result.v3_excluded == ["en-1-0"]
    assert "Claim 1 about river 0." not in cached_inputs(tmp_path)


def test_a_200_that_is_not_an_answer_is_one_failed_attempt_then_a_reject(server, settings, tmp_path):
    settings.max_retries = 2
    records = make_records(passages=2, claims_per_passage=2)
    server.faults_by_input = {
        "Passage 0 says": ["html"],
        "Claim 0 about river 0.": ["not_json"],
        "Claim 1 about river 0.": ["no_choices", "null_content"],
        "Claim 1 about river 1.": ["html", "no_choices", "not_json"],  # every attempt: this row is rejected
    }

    result = run_teacher(records, settings, tmp_path)

    assert result.stats.failed_attempts == {"invalid answer": 1 + 1 + 2 + 3}
    assert [(r["id"], r["stage"]) for r in read_rejects(tmp_path)] == [("en-1-1", "translate")]
    assert (
        "claim: no usable answer after 3 attempts; last: HTTP 200 whose body (application/json) is not JSON"
        in (result.rejects[0]["reason"])
    )
    assert [r.id for r in result.records] == ["en-0-0", "en-0-1", "en-1-0"] and all(r.reasoning for r in result.records)
    server.reset_counts()
    run_teacher(records, settings, tmp_path)
    assert server.total == 0  # every answer the server gave was kept, and the reject is remembered


def test_answers_in_flight_when_a_run_stops_are_cached(settings, tmp_path):
    records = make_records(passages=2, claims_per_passage=2, language="ms")  # four reasoning questions at once
    with FakeOpenAI(delay_s=0.2) as server:  # within settings.timeout_s
        server.faults_by_number = {4: "401"}  # at once, while the other three are still being answered
        with pytest.raises(TeacherError, match="HTTP 401"):
            run_teacher(records, replace(settings, base_url=server.url, translate=False), tmp_path)
        assert len(cached_inputs(tmp_path)) == 3

        server.reset_counts()
        result = run_teacher(records, replace(settings, base_url=server.url, translate=False), tmp_path)
    assert server.total == 1 and result.stats.cache_hits == 3  # only the refused question is asked again


def test_disagreeing_reasoning_is_regenerated_once_then_excluded_from_v3(server, settings, tmp_path):
    settings.translate = False
    records = make_records(passages=2, claims_per_passage=2, language="ms")
    server.faults_by_input = {
        "Claim 0 about river 0.": ["disagree", "disagree"],
        "Claim 1 about river 1.": ["disagree"],
    }

    result = run_teacher(records, settings, tmp_path)

    asked = [n for text, n in server.by_input.items() if "Claim 0 about river 0." in text]
    assert sorted(asked) == [1, 1]  # the plain question and one nudged regeneration, no more
    by_id = {r.id: r for r in result.records}
    excluded = by_id["ms-0-0"]
    assert excluded.reasoning is None and "twice" in excluded.extra["reasoning_rejected"]
    assert result.v3_excluded == ["ms-0-0"]
    assert by_id["ms-1-1"].reasoning and "Maka label ialah 0" in by_id["ms-1-1"].reasoning
    assert result.stats.reasoning_regenerated == 2 and result.stats.reasoning_disagreed == 1
    assert [(r["id"], r["stage"], r["reason"]) for r in read_rejects(tmp_path)] == [
        ("ms-0-0", "reasoning_check", excluded.extra["reasoning_rejected"])
    ]

    server.reset_counts()
    again = run_teacher(records, settings, tmp_path)
    assert server.total == 0 and again.stats.cache_hits == 6
    assert again.records == result.records and again.v3_excluded == ["ms-0-0"]


def test_a_timed_out_attempt_the_server_may_have_answered_is_in_the_cost(server, settings, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    settings.reasoning = False
    records = make_records(passages=1, claims_per_passage=1)
    server.faults_by_input = {"Claim 0 about river 0.": ["timeout"]}

    result = run_teacher(records, settings, tmp_path)

    assert server.by_input["Claim 0 about river 0."] == 2  # it was answered twice: once after we stopped waiting
    # Priced as if it wrote max_output_tokens: it ran past timeout_s, so it was likely writing a long answer.
    timed_out = cost_usd(
        settings,
        translation_request("Claim 0 about river 0.", settings).estimated_input_tokens(),
        settings.max_output_tokens,
    )
    assert result.stats.cost_usd == pytest.approx(result.stats.answers_cost_usd + timed_out)
    assert result.stats.timed_out_cost_usd == pytest.approx(timed_out)
    assert f"(~${timed_out:.4f} of it for 1 timed-out attempts)" in caplog.messages[-1]


def test_api_key_is_used_but_never_stored_or_shown(server, settings, tmp_path):
    result = run_teacher(make_records(2, 2), settings, tmp_path)

    assert server.authorizations == {f"Bearer {SECRET}"}
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in repr(result)
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.name == "teacher_cache.sqlite" for path in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_wrong_key_or_model_stops_the_run_at_once(server, settings, tmp_path):
    server.faults_by_number = {1: "401"}
    with pytest.raises(TeacherError, match="HTTP 401") as raised:
        run_teacher(make_records(3, 2), settings, tmp_path)
    assert KEY_ENV in str(raised.value) and SECRET not in str(raised.value)
    assert server.total < 6 + 4  # the other questions were cancelled, not each tried and retried


def test_missing_key_for_openai_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(TeacherError, match=KEY_ENV):
        run_teacher(make_records(1, 1), TeacherSettings(api_key_env=KEY_ENV, progress=False), tmp_path)


@pytest.mark.parametrize(
    "garbage, came",
    [
        ("html", "a web page (text/html)"),
        ("not_json", "a body that is not JSON (application/json)"),
        ("other_api", "JSON that is not a list of models"),
    ],
)
def test_an_endpoint_that_is_not_an_openai_api_is_refused_naming_the_setting(monkeypatch, tmp_path, garbage, came):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with FakeOpenAI(garbage=garbage) as server:
        settings = TeacherSettings(base_url=server.url, api_key_env=KEY_ENV, progress=False)
        for dry_run in (True, False):
            with pytest.raises(TeacherError) as raised:
                run_teacher(make_records(1, 1), settings, tmp_path, dry_run=dry_run)
            message = str(raised.value)
            assert (
                f"teacher endpoint {server.url} is not an OpenAI-compatible API: GET /models answered {came};"
                in message
            )
            assert "set teacher.base_url to the API's root" in message and "\n" not in message
    assert server.total == 2  # one models-list request each; no question was asked


def test_dry_run_checks_key_and_endpoint_and_counts_what_the_cache_holds(
    server, settings, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    records = make_records(passages=3, claims_per_passage=2)

    before = run_teacher(records, settings, tmp_path, dry_run=True)

    assert server.total == 0
    assert (before.stats.estimated_cached, before.stats.estimated_requests) == (0, (3 + 6) + 6)
    assert before.stats.estimated_input_tokens > 0 and before.stats.estimated_cost_usd > 0
    assert before.records == records and "0 cached, 15 to send" in caplog.text
    half = run_teacher(records, replace(settings, batch_api=True), tmp_path, dry_run=True)
    assert half.stats.estimated_cost_usd == pytest.approx(before.stats.estimated_cost_usd / 2)

    run_teacher(records, settings, tmp_path)
    server.reset_counts()
    after = run_teacher(records, settings, tmp_path, dry_run=True)
    assert server.total == 0
    assert (after.stats.estimated_cached, after.stats.estimated_requests, after.stats.estimated_cost_usd) == (15, 0, 0)

    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(TeacherError, match=KEY_ENV):  # the OpenAI API without a key: said before any promise
        run_teacher(records, TeacherSettings(api_key_env=KEY_ENV, progress=False), tmp_path, dry_run=True)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = replace(settings, base_url=f"http://127.0.0.1:{closed.getsockname()[1]}/v1")
        with pytest.raises(TeacherError, match="did not answer.*teacher.base_url"):
            run_teacher(records, dead, tmp_path, dry_run=True)


RUN_SCRIPT = """
import json, sys
from pathlib import Path
from hakim.data.records import JudgeRecord
from hakim.data.teacher import TeacherSettings, run_teacher
rows = [JudgeRecord(**json.loads(line)) for line in open(sys.argv[1])]
options = json.loads(sys.argv[6])
settings = TeacherSettings(base_url=sys.argv[2], api_key_env=sys.argv[3], max_in_flight=2, progress=False, **options)
result = run_teacher(rows, settings, Path(sys.argv[4]))
Path(sys.argv[5]).write_text("".join(json.dumps(r.to_dict()) + "\\n" for r in result.records))
"""


def test_killed_run_resumes_without_losing_or_repeating_answers(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    records = make_records(passages=6, claims_per_passage=3)
    total_questions = 6 + 18 + 18
    rows_file, work_dir, output = tmp_path / "rows.jsonl", tmp_path / "work", tmp_path / "out.jsonl"
    rows_file.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

    with FakeOpenAI(delay_s=0.05) as server:
        command = [
            sys.executable,
            "-c",
            RUN_SCRIPT,
            str(rows_file),
            server.url,
            KEY_ENV,
            str(work_dir),
            str(output),
            "{}",
        ]
        first = subprocess.Popen(command, env=env)
        deadline = time.monotonic() + 30
        while len(_cached_or_empty(work_dir)) < 8:
            assert first.poll() is None and time.monotonic() < deadline, "first run ended before it could be killed"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        before = cached_inputs(work_dir)
        assert 8 <= len(before) < total_questions and not output.exists()

        server.reset_counts()
        subprocess.run(command, env=env, check=True, timeout=60)

        assert not before & {text for text, n in server.by_input.items() if n}
        assert server.total == total_questions - len(before)
        uninterrupted = run_teacher(
            records,
            TeacherSettings(base_url=server.url, api_key_env=KEY_ENV, progress=False),
            tmp_path / "uninterrupted",
        )
    resumed = json.loads((work_dir / "teacher_stats.json").read_text())
    assert resumed["answers_used"] == uninterrupted.stats.answers_used == total_questions
    assert resumed["answers_cost_usd"] == pytest.approx(uninterrupted.stats.answers_cost_usd)
    assert resumed["cost_usd"] < resumed["answers_cost_usd"]  # the resumed run alone paid only for the rest
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == sorted(r.id for r in records)
    assert all(row["reasoning"] and row["language"] == "ms" for row in rows)
    assert json.loads((work_dir / "teacher_stats.json").read_text())["cache_hits"] >= len(before)


def _cached_or_empty(work_dir: Path) -> set[str]:
    try:
        return cached_inputs(work_dir)
    except sqlite3.OperationalError:  # the first run has not created the table yet
        return set()


def test_batch_mode_fills_the_cache_at_half_price_and_asks_leftovers_online(server, settings, tmp_path):
    settings.batch_api, settings.batch_poll_s = True, 0.01
    records = make_records(passages=2, claims_per_passage=2)
    server.faults_by_input = {"Claim 1 about river 1.": ["bad_schema"], "Claim 0 about river 1.\n": ["disagree"]}

    result = run_teacher(records, settings, tmp_path)

    assert len(server.batches) == 3  # translations, reasoning, one regeneration
    # The invalid translation is asked again online, and so is its row's reasoning, which had to wait for it.
    assert server.online == 2
    assert result.stats.batch_answers == (2 + 4 - 1) + (4 - 1) + 1
    assert [r.id for r in result.records] == [r.id for r in records] and result.v3_excluded == []
    assert all(r.language == "ms" and r.claim.startswith(MARKER) and r.reasoning for r in result.records)
    full_price = (result.stats.input_tokens * 0.15 + result.stats.output_tokens * 0.60) / 1e6
    assert full_price / 2 <= result.stats.cost_usd < full_price * 0.6
    assert not list(tmp_path.glob("batch-*.json"))


def test_batch_killed_while_waiting_is_resumed_not_resubmitted(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    records = make_records(passages=2, claims_per_passage=2)
    rows_file, work_dir, output = tmp_path / "rows.jsonl", tmp_path / "work", tmp_path / "out.jsonl"
    rows_file.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with FakeOpenAI() as server:

        def command(poll_s: float) -> list[str]:
            options = json.dumps({"batch_api": True, "batch_poll_s": poll_s})
            return [
                sys.executable,
                "-c",
                RUN_SCRIPT,
                str(rows_file),
                server.url,
                KEY_ENV,
                str(work_dir),
                str(output),
                options,
            ]

        first = subprocess.Popen(command(poll_s=60), env=env)
        deadline = time.monotonic() + 30
        while not list(work_dir.glob("batch-*.json")):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()

        subprocess.run(command(poll_s=0.01), env=env, check=True, timeout=60)

        assert len(server.batches) == 2 and server.online == 0  # translations once, then reasoning
        assert server.by_kind["translation"] == 2 + 4  # the first batch ran once, for the resumed run
    assert sorted(json.loads(line)["id"] for line in output.read_text().splitlines()) == sorted(r.id for r in records)


def test_an_endpoint_without_a_batch_api_says_so_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with FakeOpenAI(batch_api=False) as server:
        settings = TeacherSettings(base_url=server.url, api_key_env=KEY_ENV, progress=False, batch_api=True)
        with pytest.raises(
            TeacherError, match=r"has no Batch API \(HTTP 404 on /v1/files\): set teacher.batch_api=false"
        ):
            run_teacher(make_records(1, 1), settings, tmp_path)


def test_an_expired_batch_is_asked_online_with_a_warning_that_prices_it(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    records = make_records(passages=1, claims_per_passage=2)
    with FakeOpenAI(expire_batches=True) as server:
        settings = TeacherSettings(
            base_url=server.url, api_key_env=KEY_ENV, progress=False, batch_api=True, batch_poll_s=0.01
        )
        result = run_teacher(records, settings, tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ended expired: its 3 questions will be asked online at full price, ~$" in w for w in warnings)
    assert len(result.records) == 2 and all(r.reasoning for r in result.records) and result.stats.batch_answers == 0


def test_max_cost_stops_before_it_is_exceeded_and_a_rerun_goes_on(server, settings, tmp_path):
    records = make_records(passages=4, claims_per_passage=2)
    settings.max_cost_usd, settings.max_output_tokens = 0.0002, 100  # a few requests' worth

    with pytest.raises(
        TeacherError, match=r"stopped before exceeding teacher.max_cost_usd=0.0002: every answer so far is cached"
    ):
        run_teacher(records, settings, tmp_path)

    paid = server.total
    assert 0 < len(cached_inputs(tmp_path)) == paid < 4 + 8 + 8  # requests in flight finished and were kept
    db = sqlite3.connect(tmp_path / "teacher_cache.sqlite")
    spent = db.execute("SELECT SUM(input_tokens * 0.15 + output_tokens * 0.60) / 1e6 FROM answers").fetchone()[0]
    db.close()
    assert spent <= 0.0002
    settings.max_cost_usd = None
    server.reset_counts()
    result = run_teacher(records, settings, tmp_path)
    assert server.total == 4 + 8 + 8 - paid and len(result.records) == len(records)
