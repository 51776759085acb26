"""A real HTTP server on 127.0.0.1 answering chat completions as a judge would, with logprobs and faults.

Each reply is chosen by a substring of the user message (`answers`), and says what the content is and
which log probabilities the verdict position shows. Faults are queued and used once each, before any
answer: an HTTP status ("400", "429", "500", ...), or a 200 that is no usable answer: "bad_json" (the
answer cut short), "null_content", "no_choices", "html", "not_json" or "other_api" (as in fake_openai_server). The
server records every request body, its Authorization header and how many requests were in flight at once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fake_openai_server import NOT_AN_ANSWER

# Like OpenAI's tokenizers, digits are tokens of their own, apart from the punctuation around them.
TOKEN = re.compile(r"\d|[^\W\d]+|\s+|[^\w\s]+")
VERDICT_AT = re.compile(r'"jawapan":\s*$')


@dataclass
class Answer:
    content: str
    verdict_logprobs: dict[str, float] = field(default_factory=dict)  # token -> logprob at the verdict position


@dataclass
class FakeJudgeServer:
    answers: dict[str, Answer]
    logprobs: bool = True  # False: a server that ignores the logprobs parameter
    retry_after: str = "0.3"
    delay_s: float = 0.0
    faults: list[str] = field(default_factory=list)
    bodies: list[dict] = field(default_factory=list)
    authorizations: set[str] = field(default_factory=set)
    request_times: list[float] = field(default_factory=list)
    max_in_flight_seen: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeJudgeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                status, headers, payload = fake.respond(
                    self.path,
                    self.headers.get("Authorization", ""),
                    json.loads(self.rfile.read(int(self.headers["Content-Length"]))),
                )
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {
                    "Content-Type": "application/json",
                    **headers,
                    "Content-Length": str(len(data)),
                }.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def respond(self, path: str, authorization: str, body: dict) -> tuple[int, dict, dict | bytes]:
        with self._lock:
            self.bodies.append(body)
            self.authorizations.add(authorization)
            self.request_times.append(time.monotonic())
            fault = self.faults.pop(0) if self.faults else None
            self._in_flight += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self._in_flight)
        try:
            time.sleep(self.delay_s)
            if path != "/v1/chat/completions":
                return 404, {}, {"error": {"message": f"no route {path}"}}
            if fault in NOT_AN_ANSWER:
                content_type, text = NOT_AN_ANSWER[fault]
                return 200, {"Content-Type": content_type}, text.encode()
            if fault and fault.isdigit():
                headers = {"Retry-After": self.retry_after} if fault in ("429", "503") else {}
                return int(fault), headers, {"error": {"message": f"injected {fault}"}}
            user = body["messages"][-1]["content"]
            answer = next(a for needle, a in self.answers.items() if needle in user)
            if fault == "bad_json":
                answer = Answer(answer.content[:-3], answer.verdict_logprobs)
            completion = self._completion(body, answer)
            if fault == "no_choices":
                completion["choices"] = []
            elif fault == "null_content":
                completion["choices"][0].update(message={"role": "assistant", "content": None}, logprobs=None)
            return 200, {}, completion
        finally:
            with self._lock:
                self._in_flight -= 1

    def _completion(self, body: dict, answer: Answer) -> dict:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": answer.content},
            "finish_reason": "stop",
            "logprobs": None,
        }
        if self.logprobs and body.get("logprobs"):
            choice["logprobs"] = {"content": self._token_logprobs(answer, body["top_logprobs"]), "refusal": None}
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [choice],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    @staticmethod
    def _token_logprobs(answer: Answer, top_n: int) -> list[dict]:
        entries, text = [], ""
        for token in TOKEN.findall(answer.content):
            if token.isdigit() and VERDICT_AT.search(text):
                shown = sorted(answer.verdict_logprobs.items(), key=lambda kv: -kv[1])[:top_n]
                logprob = answer.verdict_logprobs.get(token, -9999.0)
            else:
                shown, logprob = [(token, 0.0)], 0.0
            entries.append(
                {
                    "token": token,
                    "logprob": logprob,
                    "bytes": list(token.encode()),
                    "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in shown],
                }
            )
            text += token
        return entries
