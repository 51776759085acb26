"""The OpenAI-compatible judge against a real HTTP server on 127.0.0.1, through the openai client."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys

import pytest

from conftest import ROOT, compose_config
from fake_judge_server import Answer, FakeJudgeServer
from fake_openai_server import FakeOpenAI
from hakim.data.dataset_io import write_dataset
from hakim.data.records import JudgeRecord, document_id
from hakim.eval.evaluation import NoVerdicts, evaluate
from hakim.eval.metrics import binary_metrics
from hakim.eval.openai_judge import OpenAIJudge, OpenAISettings
from hakim.openai_api import EndpointError
from hakim.prompting.prompt import user_message
from hakim.prompting.style import PromptStyle
from hakim.verdict import Thresholds

KEY_ENV = "HAKIM_TEST_JUDGE_KEY"
SECRET = "sk-hakim-test-secret-4242"
PASSAGE = "Kuala Lumpur ialah ibu negara Malaysia."


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)


def make_judge(server: FakeJudgeServer, style: PromptStyle = PromptStyle(), **settings) -> OpenAIJudge:
    options = {
        "model": "judge-test",
        "base_url": server.url,
        "api_key_env": KEY_ENV,
        "backoff_base_s": 0.01,
        **settings,
    }
    return OpenAIJudge(OpenAISettings(**options), style)


def test_logprobs_give_p1_from_the_verdict_position():
    answers = {
        "tuntutan-a": Answer('{"jawapan": 1}', {"1": math.log(0.8), "0": math.log(0.2)}),
        "tuntutan-b": Answer('{"jawapan": 0}', {"0": math.log(0.7), "Ya": math.log(0.2), "1": math.log(0.1)}),
        # "0" is not shown: it gets the smaller of the least likely shown token (0.03) and the unshown mass (0.02).
        "tuntutan-c": Answer('{"jawapan": 1}', {"1": math.log(0.9), " 1": math.log(0.05), "}": math.log(0.03)}),
    }
    items = [(PASSAGE, claim, "fib") for claim in answers]
    with FakeJudgeServer(answers) as server:
        judge = make_judge(server)
        verdicts = judge.judge_batch(items)
        judge.thresholds = Thresholds(0.9)
        stricter = judge.judge(*items[0])

    assert [v.label for v in verdicts] == [1, 0, 1]
    assert [v.probability for v in verdicts] == pytest.approx([0.8, 0.1 / 0.8, 0.95 / 0.97])
    assert all(v.parse_error is None for v in verdicts) and verdicts[0].raw_output == '{"jawapan": 1}'
    assert (stricter.label, stricter.probability) == (0, pytest.approx(0.8))
    expected = [{"role": "user", "content": user_message(PASSAGE, "tuntutan-a", "fib", PromptStyle())}]
    body = next(
        body for body in server.bodies if "tuntutan-a" in body["messages"][0]["content"]
    )  # requests run concurrently
    assert body["messages"] == expected
    assert (body["logprobs"], body["top_logprobs"], body["temperature"]) == (True, 5, 0)
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] and schema["schema"]["properties"] == {"jawapan": {"type": "integer", "enum": [1, 0]}}


def test_structured_output_parses_when_the_server_gives_no_logprobs():
    style = PromptStyle("v3", "ms", reasoning_first=True)
    answers = {"": Answer('{"penaakulan": "Dokumen menyebut Kuala Lumpur.", "jawapan": 1}')}
    with FakeJudgeServer(answers, logprobs=False) as server:
        served = make_judge(server, style).judge(PASSAGE, "KL ibu negara?", "boolq")
        structured = make_judge(server, style, use_logprobs=False)
        asked_without = structured.judge(PASSAGE, "KL ibu negara?", "boolq")

    assert (served.label, served.probability, served.reasoning) == (1, None, "Dokumen menyebut Kuala Lumpur.")
    assert structured.default_mode == "structured" and asked_without.label == 1
    assert "logprobs" in server.bodies[0] and "logprobs" not in server.bodies[1]
    assert list(server.bodies[0]["response_format"]["json_schema"]["schema"]["properties"]) == ["penaakulan", "jawapan"]


def test_an_answer_that_gives_no_verdict_is_asked_again():
    answers = {"": Answer('{"jawapan": 1}', {"1": math.log(0.9), "0": math.log(0.1)})}
    faults = ["bad_json", "null_content", "no_choices", "html", "not_json"]
    with FakeJudgeServer(answers, faults=list(faults)) as server:
        verdict = make_judge(server, max_retries=len(faults)).judge(PASSAGE, "tuntutan", "fib")

    assert (verdict.label, verdict.probability, verdict.parse_error) == (1, pytest.approx(0.9), None)
    assert len(server.bodies) == len(faults) + 1


def test_malformed_answers_are_unparsed_never_a_class():
    answers = {
        "tuntutan-prose": Answer("Ya, ringkasan itu konsisten."),
        "tuntutan-two": Answer('{"jawapan": 2}'),
        "tuntutan-trailing": Answer('{"jawapan": 1} kerana dokumen menyatakannya'),
        "tuntutan-good": Answer('{"jawapan": 0}', {"0": math.log(0.6), "1": math.log(0.4)}),
    }
    with FakeJudgeServer(answers) as server:
        verdicts = make_judge(server, max_retries=1).judge_batch([(PASSAGE, claim, "fib") for claim in answers])

    assert [v.label for v in verdicts] == [None, None, None, 0]
    assert len(server.bodies) == 3 * 2 + 1  # each malformed answer was asked again once
    assert all(v.probability is None and "no usable answer after 2 attempts" in v.parse_error for v in verdicts[:3])
    assert verdicts[0].raw_output == "Ya, ringkasan itu konsisten."
    assert verdicts[1].parse_error.endswith("verdict 2 is not 0 or 1")
    metrics = binary_metrics([1, 1, 0, 0], [v.label for v in verdicts])
    assert metrics["n_unparsed"] == 3 and metrics["accuracy"] == 0.25


def test_429_with_retry_after_is_retried_after_that_wait():
    answers = {"": Answer('{"jawapan": 1}', {"1": 0.0})}
    # A backoff this long would blow the time bound below: only Retry-After can explain a short wait.
    with FakeJudgeServer(answers, faults=["429"], retry_after="0.3") as server:
        verdict = make_judge(server, backoff_base_s=10.0).judge(PASSAGE, "tuntutan", "fib")

    assert verdict.label == 1
    assert len(server.bodies) == 2
    assert 0.3 <= server.request_times[1] - server.request_times[0] < 2.0


def test_a_refused_request_is_unparsed_but_an_outage_stops_the_judge():
    with FakeJudgeServer({"": Answer('{"jawapan": 1}')}, faults=["400"]) as server:
        refused = make_judge(server).judge(PASSAGE, "tuntutan-terlalu-panjang", "fib")
        server.faults.extend(["500"] * 3)
        with pytest.raises(EndpointError, match="is failing: no usable answer after 3 attempts; last: HTTP 500"):
            make_judge(server, max_retries=2).judge(PASSAGE, "tuntutan", "fib")

    assert (refused.label, refused.probability, refused.parse_error) == (
        None,
        None,
        "request refused: HTTP 400: injected 400",
    )
    assert len(server.bodies) == 1 + 3  # the refused request was not asked again; the failing one was, twice


def test_requests_are_not_logged_one_line_each(caplog):
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.NOTSET)  # as in a fresh process, whatever ran before
    caplog.set_level(logging.INFO)
    with FakeJudgeServer({"": Answer('{"jawapan": 1}')}) as server:
        verdicts = make_judge(server).judge_batch([(PASSAGE, f"tuntutan-{i}", "fib") for i in range(3)])

    assert [v.label for v in verdicts] == [1, 1, 1] and len(server.bodies) == 3
    assert not [message for message in caplog.messages if "HTTP Request" in message]


def test_requests_in_flight_stay_within_the_bound():
    with FakeJudgeServer({"": Answer('{"jawapan": 1}')}, delay_s=0.1) as server:
        verdicts = make_judge(server, max_in_flight=2).judge_batch(
            [(PASSAGE, f"tuntutan-{i}", "fib") for i in range(6)]
        )

    assert [v.label for v in verdicts] == [1] * 6
    assert server.max_in_flight_seen == 2


def _tiny_dataset(root) -> str:
    records = [
        JudgeRecord(f"fib-{i}", "fib", "ms", PASSAGE, f"tuntutan-{i}", label, document_id("fib", PASSAGE), "test")
        for i, label in enumerate([1, 0, 1, 0])
    ]
    write_dataset({"train": records, "eval": records}, root, {})
    return str(root)


def test_key_is_sent_but_never_printed_logged_or_written(workspace, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    answers = {
        "tuntutan-0": Answer('{"jawapan": 1}', {"1": math.log(0.9), "0": math.log(0.1)}),
        "tuntutan-1": Answer('{"jawapan": 0}', {"0": math.log(0.7), "1": math.log(0.3)}),
        "": Answer("tidak pasti"),
    }
    out_dir = tmp_path / "evaluation"
    with FakeJudgeServer(answers) as server:
        cfg = compose_config(
            "evaluate",
            workspace,
            out_dir,
            [
                "judge=openai",
                f"judge.base_url='{server.url}'",
                f"judge.api_key_env={KEY_ENV}",
                "judge.backoff_base_s=0.01",
                f"dataset_dir={_tiny_dataset(tmp_path / 'data')}",
            ],
        )
        summary = evaluate(cfg)
        with pytest.raises(RuntimeError, match=f"HTTP 401.*{KEY_ENV}") as refused:
            server.faults.append("401")
            make_judge(server).judge(PASSAGE, "tuntutan-0", "fib")

    assert server.authorizations == {f"Bearer {SECRET}"}
    rows = [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows] == [1, 0, None, None]
    assert summary["subsets"]["overall"]["n_unparsed"] == 2 and summary["extra"]["judge"] == "openai"
    printed = capsys.readouterr()
    for text in (
        printed.out,
        printed.err,
        caplog.text,
        str(refused.value),
        repr(cfg),
        *(p.read_text() for p in out_dir.glob("*.*") if p.suffix != ".png"),
    ):
        assert SECRET not in text


def _judge_overrides(server: FakeJudgeServer, dataset_dir: str) -> list[str]:
    return [
        "judge=openai",
        f"judge.base_url='{server.url}'",
        f"judge.api_key_env={KEY_ENV}",
        "judge.max_retries=1",
        "judge.backoff_base_s=0.01",
        f"dataset_dir={dataset_dir}",
    ]


@pytest.mark.parametrize(
    "fault, error",
    [
        ("400", "request refused: HTTP 400: injected 400"),
        ("null_content", "no usable answer after 2 attempts; last: no content in the answer (null)"),
    ],
)
def test_an_evaluation_the_judge_mostly_did_not_answer_fails_after_writing_its_files(workspace, tmp_path, fault, error):
    out_dir = tmp_path / "evaluation"
    with FakeJudgeServer({"": Answer('{"jawapan": 1}')}, faults=[fault] * 64) as server:
        cfg = compose_config("evaluate", workspace, out_dir, _judge_overrides(server, _tiny_dataset(tmp_path / "data")))
        with pytest.raises(NoVerdicts) as raised:
            evaluate(cfg)

    message = str(raised.value)
    assert "\n" not in message and f"judge gpt-4o-mini at {server.url} gave no verdict for 4/4 rows" in message
    assert "more than max_unparsed_fraction=0.5" in message and f"commonest error (4 rows): {error}" in message
    rows = [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows] == [None] * 4
    assert json.loads((out_dir / "metrics.json").read_text())["subsets"]["overall"]["n_unparsed"] == 4


def test_evaluate_py_exits_1_in_one_line_when_the_judge_answered_nothing(workspace, tmp_path, monkeypatch):
    monkeypatch.setenv("HAKIM_ROOT", str(workspace))
    out_dir = tmp_path / "evaluation"
    with FakeJudgeServer({"": Answer('{"jawapan": 1}')}, faults=["400"] * 64) as server:
        failed = subprocess.run(
            [
                sys.executable,
                str(ROOT / "evaluate.py"),
                *_judge_overrides(server, _tiny_dataset(tmp_path / "data")),
                f"hydra.run.dir={out_dir}",
            ],
            cwd=workspace,
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert failed.returncode == 1
    assert failed.stderr.strip().count("\n") == 0, failed.stderr
    assert failed.stderr.startswith("error: NoVerdicts: judge gpt-4o-mini at http") and "HTTP 400" in failed.stderr
    assert (out_dir / "predictions.jsonl").exists() and (out_dir / "report.md").exists()


@pytest.mark.parametrize("garbage", ["html", "not_json", "other_api"])
def test_an_endpoint_that_is_not_an_openai_api_is_refused_naming_the_setting(workspace, tmp_path, garbage):
    with FakeOpenAI(garbage=garbage) as server:
        cfg = compose_config(
            "evaluate", workspace, tmp_path / "evaluation", _judge_overrides(server, _tiny_dataset(tmp_path / "data"))
        )
        with pytest.raises(EndpointError) as raised:
            evaluate(cfg)

    message = str(raised.value)
    assert f"judge endpoint {server.url} is not an OpenAI-compatible API: GET /models answered" in message
    assert "set judge.base_url to the API's root" in message and "\n" not in message
    assert server.total == 1  # refused before any row was asked
