"""serve.py: the tiny 4-bit judge behind a real uvicorn server on 127.0.0.1, called as its users would.

One server process (serve.py, with an API key) answers most tests and is stopped with SIGTERM by the last
one; a second server runs in a thread of this process with a tiny queue and a long batching wait, so a full
queue and a failing model can be shown on demand.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import torch

from conftest import ROOT, compose_config
from hakim.data.dataset_io import read_split
from hakim.eval.evaluation import evaluate
from hakim.eval.judge import Judge
from hakim.prompting.chunks import Chunking
from hakim.prompting.prompt import user_message
from hakim.prompting.style import PromptStyle
from marker_model import CLAIM, FILLER, P_WITH_MARKER, SUPPORT

KEY_ENV = "HAKIM_SERVE_TEST_KEY"
KEY = "hakim-serve-test-key-5150"
SERVED_NAME = "hakim-tiny"
# Put into request bodies; the server's log must never show it.
MARKER = "PENANDA-RAHSIA-7781"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
P_TOLERANCE = 1e-5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen | None = None, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with status {process.returncode} before it was ready")
        try:
            response = httpx.get(f"{url}/readyz", timeout=5)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} was not ready within {timeout} s")


class Served:
    """serve.py in its own process, as a user starts it."""

    def __init__(self, tiny_run: Path, workspace: Path, out_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out_dir = out_dir
        self.output = out_dir / "stdout.txt"
        environment = {
            **os.environ,
            "HAKIM_ROOT": str(workspace),
            KEY_ENV: KEY,
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        arguments = [
            f"judge.run_dir={tiny_run}",
            f"port={self.port}",
            f"api_key_env={KEY_ENV}",
            f"served_name={SERVED_NAME}",
            "max_new_tokens=16",
            "max_items=16",
            "max_body_mb=1",
            "max_wait_ms=200",
            "threads=1",
            f"hydra.run.dir={out_dir / 'run'}",
        ]
        with open(self.output, "w") as handle:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "serve.py"), *arguments],
                cwd=workspace,
                env=environment,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        self.ready = wait_ready(self.url, self.process)

    def post(self, path: str, body=None, key: str | None = KEY, **options) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(
            f"{self.url}{path}", json=body, headers={**headers, **options.pop("headers", {})}, timeout=60, **options
        )

    def logs(self) -> str:
        return self.output.read_text() + "".join(path.read_text() for path in (self.out_dir / "run").glob("*.log"))


@pytest.fixture(scope="module")
def served(tiny_run, workspace, tmp_path_factory):
    server = Served(tiny_run, workspace, tmp_path_factory.mktemp("served"))
    yield server
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=60)


@pytest.fixture(scope="module")
def local_judge(tiny_run):
    """The same run loaded here, as evaluate.py would: what every served answer is compared with."""
    return Judge.load(tiny_run)


@pytest.fixture(scope="module")
def sample_items(sample_dataset):
    records = [r for split in ("train", "validation", "test") for r in read_split(sample_dataset, split)]
    return [(r.passage, r.claim, r.source) for r in records]


def as_body_item(item) -> dict:
    return {"passage": item[0], "claim": item[1], "task": item[2]}


def one_thread_reference(judge: Judge, items) -> list:
    """judge_batch on one thread (the server's setting): on two shared cores two threads are many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return judge.judge_batch(items)
    finally:
        torch.set_num_threads(threads)


def test_evaluate_through_the_openai_route_matches_evaluating_the_run(
    served, tiny_run, workspace, sample_dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, KEY)
    evaluate(compose_config("evaluate", workspace, tmp_path / "run", [f"judge.run_dir={tiny_run}"]))
    evaluate(
        compose_config(
            "evaluate",
            workspace,
            tmp_path / "served",
            [
                "judge=openai",
                f"judge.base_url={served.url}/v1",
                f"judge.model={SERVED_NAME}",
                f"judge.api_key_env={KEY_ENV}",
                f"dataset_dir={sample_dataset}",
            ],
        )
    )

    def predictions(name):
        return [json.loads(line) for line in (tmp_path / name / "predictions.jsonl").read_text().splitlines()]

    local, remote = predictions("run"), predictions("served")
    assert len(local) == len(remote) == len(read_split(sample_dataset, "eval"))
    assert [r["id"] for r in remote] == [r["id"] for r in local]
    assert [r["prediction"] for r in remote] == [r["prediction"] for r in local]
    assert all(r["parse_error"] is None for r in remote)
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(local, remote, strict=True)) < P_TOLERANCE
    # the metrics could not tell the two apart only if P(1) varies: a constant answer would match anything
    assert len({round(r["probability"], 4) for r in local}) > len(local) // 2


def test_64_concurrent_clients_get_their_own_rows_in_order(served, local_judge, sample_items):
    sizes = [1 + index % 6 for index in range(64)]
    requests, start = [], 0
    for client, size in enumerate(sizes):
        # a tag per row: every row is different, so an answer given to the wrong row or place shows
        requests.append(
            [
                (p, f"{c} [{client}.{i}]", s)
                for i, (p, c, s) in enumerate(sample_items[(start + k) % len(sample_items)] for k in range(size))
            ]
        )
        start += size
    calls_before = httpx.get(f"{served.url}/readyz").json()["model_calls"]

    async def call_all():
        async with httpx.AsyncClient(
            base_url=served.url,
            timeout=120,
            limits=httpx.Limits(max_connections=64),
            headers={"Authorization": f"Bearer {KEY}"},
        ) as client:
            return await asyncio.gather(
                *(client.post("/v1/judge", json={"items": [as_body_item(i) for i in items]}) for items in requests)
            )

    responses = asyncio.run(call_all())
    stats = httpx.get(f"{served.url}/readyz").json()
    rows = [item for items in requests for item in items]
    expected = one_thread_reference(local_judge, rows)
    assert [r.status_code for r in responses] == [200] * len(requests)
    answered = [verdict for response in responses for verdict in response.json()["verdicts"]]
    assert [len(r.json()["verdicts"]) for r in responses] == sizes
    assert [v["label"] for v in answered] == [v.label for v in expected]
    assert max(abs(v["probability"] - e.probability) for v, e in zip(answered, expected, strict=True)) < P_TOLERANCE
    assert [v["truncated"] for v in answered] == [v.truncated for v in expected]
    assert len({round(v.probability, 6) for v in expected}) > 0.9 * len(rows)
    # batched: far fewer model calls than requests, and some call held rows of several requests
    assert stats["model_calls"] - calls_before < len(requests) // 2 and stats["largest_batch"] > max(sizes)


def test_a_claim_too_long_fails_alone_and_the_other_items_are_answered(served, local_judge, sample_items):
    items = [sample_items[0], (f"{MARKER} Teks pendek.", "panjang " * 300, "boolq"), sample_items[1]]
    response = served.post("/v1/judge", {"items": [as_body_item(i) for i in items]})
    assert response.status_code == 200
    first, refused, third = response.json()["verdicts"]
    assert refused["label"] is None and "claim too long" in refused["error"]
    expected = one_thread_reference(local_judge, [items[0], items[2]])
    assert [first["label"], third["label"]] == [v.label for v in expected]
    assert abs(first["probability"] - expected[0].probability) < P_TOLERANCE
    assert first["threshold"] == 0.5 and first["error"] is None and response.json()["mode"] == "score"


def test_generate_mode_returns_what_the_judge_wrote_and_why_it_did_not_parse(served):
    response = served.post(
        "/v1/judge",
        {"items": [{"passage": "Kuala Lumpur ialah ibu negara.", "claim": "adakah kl ibu negara"}], "mode": "generate"},
    )
    assert response.status_code == 200
    [verdict] = response.json()["verdicts"]
    assert verdict["raw_output"] is not None and response.json()["mode"] == "generate"
    assert (verdict["label"] is None) == (verdict["unparsed"] is not None)


@pytest.mark.parametrize(
    "body, location, message",
    [
        ({"items": [{"passage": "Teks.", "claim": "a"}, {"passage": "Teks."}]}, "items[1].claim", "Field required"),
        ({"items": [{"passage": "   ", "claim": "a"}]}, "items[0].passage", "must not be empty"),
        ({"items": [{"passage": "Teks.", "claim": 42}]}, "items[0].claim", "valid string"),
        ({"items": [{"passage": "Teks.", "claim": "a", "pasage": "Teks."}]}, "items[0].pasage", "Extra inputs"),
        ({"items": [{"passage": "Teks.", "claim": "a", "language": "fr"}]}, "items[0].language", "'ms' or 'en'"),
        ({"items": []}, "items", "at least 1 item"),
        (
            {"items": [{"passage": f"{MARKER} Teks.", "claim": "a"}] * 17},
            "items",
            "at most 16 per request (serve max_items)",
        ),
        (
            {"items": [{"passage": "Teks.", "claim": "a"}], "mode": "guess"},
            "mode",
            "must be one of ['score', 'generate']",
        ),
        ([1, 2], "body", "must be a JSON object"),
    ],
)
def test_a_malformed_request_is_a_422_naming_the_item_and_field(served, body, location, message):
    response = served.post("/v1/judge", body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == location and message in error["message"] and error["message"].startswith(location)


def test_bodies_that_are_not_json_or_too_large_are_refused_clearly(served):
    not_json = served.post("/v1/judge", content=b'{"items": [', headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422 and "not valid JSON" in not_json.json()["error"]["message"]
    form = served.post("/v1/judge", data={"items": "x"})
    assert form.status_code == 422 and "Content-Type: application/json" in form.json()["error"]["message"]
    big = {"items": [{"passage": MARKER + " " + "ayat " * 300_000, "claim": "a"}]}
    declared = served.post("/v1/judge", big)
    assert declared.status_code == 413 and "max_body_mb" in declared.json()["error"]["message"]

    def chunks():  # no Content-Length: the limit is counted as the body arrives
        data = json.dumps(big).encode()
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    streamed = served.post("/v1/judge", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    missing = httpx.get(f"{served.url}/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "Not Found"


def test_an_uploaded_file_is_judged_row_by_row_and_its_bad_rows_are_named(served, local_judge):
    def upload(name: str, data: str, **form) -> httpx.Response:
        return httpx.post(
            f"{served.url}/v1/judge/file",
            files={"file": (name, data.encode())},
            data=form,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=60,
        )

    good = upload(
        "rows.csv",
        "teks,soalan,tugas\nKL ibu negara.,adakah kl ibu negara,boolq\nSungai panjang.,Sungai pendek.,fib\n",
        passage_column="teks",
        claim_column="soalan",
        task_column="tugas",
    )
    assert good.status_code == 200
    rows = good.json()["rows"]
    assert [(r["row"], r["task"]) for r in rows] == [("rows.csv:2", "boolq"), ("rows.csv:3", "fib")]
    expected = one_thread_reference(
        local_judge, [("KL ibu negara.", "adakah kl ibu negara", "boolq"), ("Sungai panjang.", "Sungai pendek.", "fib")]
    )
    assert max(abs(r["probability"] - e.probability) for r, e in zip(rows, expected, strict=True)) < P_TOLERANCE
    bad = upload("rows.csv", f"passage,claim\nTeks satu.,adakah satu\nTeks dua.,\n,{MARKER}\n")
    assert bad.status_code == 422
    assert bad.json()["error"]["message"] == (
        "2 bad rows: rows.csv:3: field 'claim': empty; rows.csv:4: field 'passage': empty"
    )
    wrong_type = upload("rows.txt", "passage,claim\n")
    assert (
        wrong_type.status_code == 422
        and "upload a file ending in one of .jsonl" in wrong_type.json()["error"]["message"]
    )


def test_the_key_is_asked_for_and_checked(served):
    item = {"items": [{"passage": "Teks.", "claim": "a"}]}
    for key in (None, "wrong-key", KEY[:-1]):
        refused = served.post("/v1/judge", item, key=key)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert KEY not in refused.text
    assert served.post("/v1/judge", item, headers={"Authorization": KEY}, key=None).status_code == 401  # no scheme
    assert served.post("/v1/judge", item).status_code == 200
    assert httpx.get(f"{served.url}/v1/models").status_code == 401
    models = httpx.get(f"{served.url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert [m["id"] for m in models["data"]] == [SERVED_NAME]
    assert httpx.get(f"{served.url}/healthz").json() == {"status": "ok"}  # probes need no key
    assert served.ready["auth_required"] is True and served.ready["model"] == SERVED_NAME


def test_the_openai_route_refuses_what_it_cannot_answer_as_asked(served):
    style = PromptStyle()
    prompt = user_message(f"{MARKER} Kuala Lumpur ialah ibu negara.", "adakah kl ibu negara", "boolq", style)
    ask = {"model": SERVED_NAME, "messages": [{"role": "user", "content": prompt}], "logprobs": True, "top_logprobs": 5}
    answer = served.post("/v1/chat/completions", ask).json()
    assert json.loads(answer["choices"][0]["message"]["content"])["jawapan"] in (0, 1)
    cut = served.post("/v1/chat/completions", {**ask, "max_tokens": 3}).json()["choices"][0]
    assert (cut["finish_reason"], cut["message"]["content"]) == ("length", '{"jawapan')
    cases = [
        ({**ask, "model": "gpt-4o-mini"}, 404, "is not served here"),
        ({**ask, "messages": [{"role": "user", "content": "Is the sky blue?"}]}, 400, "not a judge prompt"),
        (
            {**ask, "messages": [{"role": "user", "content": user_message("T.", "a", "boolq", PromptStyle("v3"))}]},
            400,
            "not a judge prompt in this judge's style (v2",
        ),
        (
            {
                **ask,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "x",
                        "schema": {"type": "object", "properties": {"answer": {"type": "string"}}},
                    },
                },
            },
            400,
            "answers with the keys ['jawapan']",
        ),
        ({**ask, "stream": True}, 422, "stream"),
        ({**ask, "n": 2}, 422, "n: Input should be less than or equal to 1"),
    ]
    for body, status, message in cases:
        response = served.post("/v1/chat/completions", body)
        assert (response.status_code, message in response.json()["error"]["message"]) == (status, True), response.text


def test_the_page_judges_a_row_and_a_file_in_a_real_browser(served, sample_items, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}: `apt-get install chromium` (.ci/run installs it)")
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="playwright is in the dev extra: pip install -e '.[dev]'"
    )
    rows = [{"teks": p, "kenyataan": c, "tugas": s} for p, c, s in sample_items[:5]]
    upload = tmp_path / "rows.jsonl"
    upload.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    passage = "Harimau Malaya ialah <b>harimau</b> yang tinggal di Semenanjung."
    direct = served.post(
        "/v1/judge", {"items": [{"passage": passage, "claim": "adakah harimau malaya harimau", "task": "boolq"}]}
    ).json()["verdicts"][0]
    file_direct = served.post("/v1/judge", {"items": [as_body_item(i) for i in sample_items[:5]]}).json()["verdicts"]

    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(accept_downloads=True)
        page.goto(served.url)
        page.wait_for_selector("body[data-ready=true]")
        page.fill("#passage", passage)
        page.fill("#claim", "adakah harimau malaya harimau")
        page.select_option("#task", "boolq")
        page.click("#judge-button")
        page.wait_for_selector("#error:not([hidden])")
        assert page.text_content("#error").startswith("HTTP 401")  # the key field is there for a reason
        page.fill("#api-key", KEY)
        page.click("#judge-button")
        page.wait_for_selector("#result:not([hidden])")
        assert page.text_content("#verdict") == {1: "1: holds", 0: "0: does not hold"}[direct["label"]]
        assert page.text_content("#probability") == f"{direct['probability']:.4f}"
        assert page.eval_on_selector("#probability-bar", "e => e.style.width") == f"{100 * direct['probability']:.1f}%"
        assert page.text_content("#passage-read") == passage and page.locator("#passage-read b").count() == 0
        assert page.text_content("#latency").endswith(" ms")

        page.set_input_files("#file", str(upload))
        page.fill("#passage-column", "teks")
        page.fill("#claim-column", "kenyataan")
        page.fill("#task-column", "tugas")
        page.click("#file-button")
        page.wait_for_selector("#file-result:not([hidden])")
        table = page.eval_on_selector_all(
            "#results tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
        assert [(cells[0], cells[3]) for cells in table] == [
            (f"rows.jsonl:{n}", str(v["label"])) for n, v in enumerate(file_direct, 1)
        ]
        with page.expect_download() as download:
            page.click("#download")
        lines = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
        assert [(line["claim"], line["label"]) for line in lines] == [
            (r["kenyataan"], v["label"]) for r, v in zip(rows, file_direct, strict=True)
        ]
        assert (
            max(abs(line["probability"] - v["probability"]) for line, v in zip(lines, file_direct, strict=True))
            < P_TOLERANCE
        )

        # A reasoning judge may write anything; whatever it writes is shown as text. The answer is the
        # server's own with a hostile reasoning put in: the page cannot tell the difference.
        hostile = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'

        def with_hostile_reasoning(route):
            answer = route.fetch().json()
            answer["verdicts"][0]["reasoning"] = hostile
            route.fulfill(json=answer)

        page.route("**/v1/judge", with_hostile_reasoning)
        page.click("#judge-button")
        page.wait_for_selector("#reasoning-section:not([hidden])")
        assert page.text_content("#reasoning") == hostile
        assert page.locator("#reasoning script, #reasoning img").count() == 0
        assert page.evaluate("window.__pwned") is None

        page.goto(f"{served.url}/docs")  # the API docs render from the server alone: this browser reaches nothing else
        page.wait_for_selector("[data-path='/v1/chat/completions']")
        browser.close()


def test_a_judge_that_fails_to_load_stops_the_server_with_its_error(workspace, tmp_path):
    from hakim.runs.run_dir import NotARunError
    from hakim.serve.server import serve

    cfg = compose_config(
        "serve", workspace, tmp_path, [f"judge.run_dir={tmp_path / 'no-such-run'}", f"port={free_port()}"]
    )
    started = time.monotonic()
    with pytest.raises(NotARunError, match="no-such-run"):
        serve(cfg)
    assert time.monotonic() - started < 30  # it stops, rather than staying up unready


class ThreadServer:
    """A uvicorn server in a thread of this process, around the judge loaded here."""

    def __init__(self, judge: Judge, **limits):
        import uvicorn

        from hakim.serve.app import create_app
        from hakim.serve.settings import ServeSettings

        port = free_port()
        options = dict(
            host="127.0.0.1",
            port=port,
            api_key_env=None,
            served_name=None,
            max_batch=8,
            max_wait_ms=10,
            max_queue=64,
            retry_after_s=1,
            max_body_mb=1,
            max_items=16,
            max_file_rows=100,
            graceful_shutdown_s=10,
        )
        settings = ServeSettings(**{**options, **limits})
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(lambda: judge, settings), host="127.0.0.1", port=port, log_config=None)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_ready(self.url)

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def tight_server(local_judge):
    server = ThreadServer(local_judge, max_queue=4, max_items=4, max_batch=8, max_wait_ms=1500, retry_after_s=7)
    yield server
    server.close()


def test_a_full_queue_is_a_503_with_retry_after_and_the_queued_rows_are_still_answered(tight_server, sample_items):
    four = {"items": [as_body_item(i) for i in sample_items[:4]]}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{tight_server.url}/v1/judge", json=four, timeout=60)
        # the four rows wait for company (max_wait_ms 1500): the queue is full until then
        deadline = time.monotonic() + 10
        while httpx.get(f"{tight_server.url}/readyz").json()["queued_rows"] < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        refused = httpx.post(
            f"{tight_server.url}/v1/judge", json={"items": [as_body_item(sample_items[4])]}, timeout=60
        )
        answered = first.result()
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "7"
    assert "max_queue=4" in refused.json()["error"]["message"]
    assert answered.status_code == 200 and len(answered.json()["verdicts"]) == 4


def test_a_failing_model_is_a_plain_500_without_its_traceback(tight_server, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("tokenizer state lost in /opt/secret/internal/path.py")

    monkeypatch.setattr("hakim.eval.judge.encode_for_scoring", broken)
    response = httpx.post(
        f"{tight_server.url}/v1/judge", json={"items": [{"passage": "Teks.", "claim": "a"}]}, timeout=60
    )
    assert response.status_code == 500
    assert response.json()["error"]["message"] == "the server failed to answer this request; its log says why"
    assert "Traceback" not in response.text and "secret" not in response.text
    monkeypatch.undo()
    assert (
        httpx.post(
            f"{tight_server.url}/v1/judge", json={"items": [{"passage": "Teks.", "claim": "a"}]}, timeout=60
        ).status_code
        == 200
    )


@pytest.fixture(scope="module")
def chunked_server(marker_dir):
    """A judge that reads long passages in chunks (the hand-set marker judge: P(1) high where Kinabalu is named)."""
    server = ThreadServer(Judge.open(marker_dir, chunking=Chunking(64)))
    yield server
    server.close()


def test_serve_py_builds_the_judge_its_chunking_group_names(marker_dir, workspace, tmp_path):
    from hakim.serve.server import judge_loader

    def loaded(*overrides):
        return judge_loader(
            compose_config("serve", workspace, tmp_path, ["judge=model", f"judge.path={marker_dir}", *overrides])
        )()

    assert loaded().chunking == Chunking()
    assert loaded("chunking=sentences", "chunking.split_claim=true").chunking == Chunking(400, split_claim=True)


def test_a_chunked_verdict_names_the_chunk_that_decided(chunked_server):
    items = [
        {"passage": f"{FILLER} {SUPPORT}", "claim": CLAIM, "task": "boolq"},
        {"passage": FILLER, "claim": CLAIM, "task": "boolq"},
    ]
    response = httpx.post(f"{chunked_server.url}/v1/judge", json={"items": items, "return_passage": True}, timeout=60)
    assert response.status_code == 200
    found, absent = response.json()["verdicts"]
    assert (found["label"], absent["label"]) == (1, 0) and found["probability"] == pytest.approx(
        P_WITH_MARKER, abs=1e-4
    )
    assert found["chunk"] == found["chunk_count"] - 1 > 2 and found["chunk_text"] == found["passage_read"] == SUPPORT
    assert found["truncated"] is False and found["claim_sentence"] is None
    assert absent["chunk_text"] == absent["passage_read"] and absent["chunk_count"] == found["chunk_count"] - 1
    upload = "".join(json.dumps(item) + "\n" for item in items)
    rows = httpx.post(
        f"{chunked_server.url}/v1/judge/file", files={"file": ("long.jsonl", upload.encode())}, timeout=60
    ).json()["rows"]
    assert [(r["label"], r["chunk"], r["chunk_text"]) for r in rows] == [
        (1, found["chunk"], SUPPORT),
        (0, absent["chunk"], absent["chunk_text"]),
    ]


def test_evaluate_through_a_chunked_servers_openai_route_matches_chunked_evaluation(
    chunked_server, marker_dir, workspace, tmp_path
):
    rows = tmp_path / "long.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"passage": passage, "claim": CLAIM, "label": label, "language": "ms"}) + "\n"
            for passage, label in ((f"{FILLER} {SUPPORT}", 1), (FILLER, 0), (f"{SUPPORT} {FILLER}", 1))
        )
    )
    evaluate(
        compose_config(
            "evaluate",
            workspace,
            tmp_path / "local",
            [
                "judge=model",
                f"judge.path={marker_dir}",
                f"rows={rows}",
                "chunking=sentences",
                "chunking.chunk_tokens=64",
            ],
        )
    )
    evaluate(
        compose_config(
            "evaluate",
            workspace,
            tmp_path / "served",
            [
                "judge=openai",
                f"judge.base_url={chunked_server.url}/v1",
                f"judge.model={marker_dir.name}",
                f"rows={rows}",
            ],
        )
    )

    def predictions(name):
        return [json.loads(line) for line in (tmp_path / name / "predictions.jsonl").read_text().splitlines()]

    local, remote = predictions("local"), predictions("served")
    assert [r["prediction"] for r in remote] == [r["prediction"] for r in local] == [1, 0, 1]
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(local, remote, strict=True)) < P_TOLERANCE


def test_the_page_shows_the_chunk_that_decided(chunked_server):
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}: `apt-get install chromium` (.ci/run installs it)")
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="playwright is in the dev extra: pip install -e '.[dev]'"
    )
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(chunked_server.url)
        page.wait_for_selector("body[data-ready=true]")
        page.fill("#passage", f"{FILLER} {SUPPORT}")
        page.fill("#claim", CLAIM)
        page.click("#judge-button")
        page.wait_for_selector("#result:not([hidden])")
        assert page.text_content("#verdict") == "1: holds" and page.text_content("#passage-read") == SUPPORT
        note = page.text_content("#passage-note")
        assert note.startswith("(chunk ") and note.endswith(": the chunk that decided)")
        number, total = note.removeprefix("(chunk ").split(":")[0].split(" of ")
        assert number == total and int(total) > 2
        browser.close()


def test_sigterm_finishes_the_requests_in_flight_and_exits_0(served, sample_items):
    """Last: it stops the module's server. Its log, complete now, must hold neither the key nor a request body."""
    bodies = [
        {"items": [as_body_item(sample_items[(8 * n + k) % len(sample_items)]) for k in range(16)]} for n in range(8)
    ]
    finished = {}

    def call(number):
        response = served.post("/v1/judge", bodies[number])
        finished[number] = time.monotonic()
        return response

    def admitted_and_waiting(before: int) -> bool:
        stats = httpx.get(f"{served.url}/readyz").json()
        return stats["rows_admitted"] - before == 16 * len(bodies) and stats["queued_rows"] > 0

    before = httpx.get(f"{served.url}/readyz").json()["rows_admitted"]
    with ThreadPoolExecutor(len(bodies)) as pool:
        calls = [pool.submit(call, n) for n in range(len(bodies))]
        deadline = time.monotonic() + 30
        while not admitted_and_waiting(before) and time.monotonic() < deadline:
            time.sleep(0.01)
        served.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        refused_at = None
        while refused_at is None and time.monotonic() < signalled + 30:
            try:
                socket.create_connection(("127.0.0.1", served.port), timeout=1).close()
                time.sleep(0.02)
            except OSError:
                refused_at = time.monotonic()
        responses = [c.result() for c in calls]
    assert served.process.wait(timeout=60) == 0
    assert [r.status_code for r in responses] == [200] * len(bodies)
    assert all(v["label"] in (0, 1) for r in responses for v in r.json()["verdicts"])
    # the requests were in flight: answered after SIGTERM, some after the server had stopped accepting
    assert refused_at is not None and max(finished.values()) > refused_at > signalled
    logs = served.logs()
    assert "POST /v1/judge" in logs and "Shutting down" in logs and "; 1 torch threads" in logs  # threads=1
    assert KEY not in logs and MARKER not in logs and sample_items[0][0][:40] not in logs
