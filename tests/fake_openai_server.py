"""A real HTTP server on 127.0.0.1 that speaks the OpenAI subset the teacher uses, with injectable faults.

Translation answers are "[ms] " + the user text; reasoning answers reach the gold label written in the
prompt; written claims (augment=perturb) and support checks are answered by `written_claims` and `supported`.
Faults are queued per input (a substring of the user message) or per request number, and each
queued fault is used once: "400", "401", "429", "503", "500", "timeout", "length" (a reply cut short),
"bad_json", "bad_schema", "disagree", and the HTTP 200s that are not a usable answer: "html" (a web page),
"not_json" (a JSON content type over a body that is not JSON), "other_api" (another API's JSON),
"no_choices" (`choices: []`) and "null_content". `garbage` makes every route, the models list included,
answer one of the first three: a base_url that points at something other than an OpenAI-compatible API.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import Counter

from aiohttp import web

MARKER = "[ms] "
# What a misconfigured server or proxy sends with HTTP 200 instead of a chat completion: (content type, body).
NOT_AN_ANSWER = {
    "html": (
        "text/html",
        "<!doctype html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>",
    ),
    "not_json": ("application/json", "<html><body>502 Bad Gateway</body></html>"),
    "other_api": ("application/json", '{"status": "ok", "version": "1.2.0"}'),
}


def written_claims(user: str) -> list[dict]:
    """What the fake teacher writes about a document of numbered sentences: two claims Hakim keeps (one consistent
    claim resting on sentence 1, one negated), one "inconsistent" claim the document states word for word and one
    citing a sentence the document does not have (both to be refused), and a consistent claim on sentences 2 and 3."""
    sentences = re.findall(r"^\[(\d+)\] (.+)$", user, flags=re.MULTILINE)
    first, second = sentences[0][1], sentences[1][1]
    claims = [
        {"claim": first, "label": 1, "sentences": [1], "edit": ""},
        {
            "claim": "Tidak benar bahawa " + first[0].lower() + first[1:],
            "label": 0,
            "sentences": [1],
            "edit": "negation",
        },
        {"claim": second, "label": 0, "sentences": [2], "edit": "nothing"},
        {"claim": sentences[-1][1], "label": 1, "sentences": [len(sentences) + 5], "edit": ""},
    ]
    if len(sentences) > 2:
        claims.append({"claim": f"{second} {sentences[2][1]}", "label": 1, "sentences": [2, 3], "edit": ""})
    return claims


def supported(user: str) -> bool:
    """A claim is supported when the document (the part before "Claim:") still states it word for word."""
    document, claim = user.split("\n\nClaim:\n")
    return claim.strip() in document


class FakeOpenAI:
    def __init__(
        self,
        delay_s: float = 0.0,
        retry_after: str = "1",
        hang_s: float = 2.0,
        batch_api: bool = True,
        expire_batches: bool = False,
        garbage: str | None = None,
    ):
        self.delay_s = delay_s  # answers wait this long; injected error statuses come at once
        self.garbage = garbage  # a key of NOT_AN_ANSWER: every route answers HTTP 200 with that body
        self.batch_api = batch_api  # False: no /files or /batches routes, as on many local servers (HTTP 404)
        self.expire_batches = expire_batches  # True: every batch ends "expired" with no output, as after 24 h
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.faults_by_input: dict[str, list[str]] = {}
        self.faults_by_number: dict[int, str] = {}
        self.lock = threading.Lock()
        self.reset_counts()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def reset_counts(self) -> None:
        with self.lock:
            self.total = 0
            self.online = 0
            self.by_kind: Counter = Counter()
            self.by_input: Counter = Counter()
            self.authorizations: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeOpenAI:
        app = web.Application()
        if self.garbage:
            app.router.add_route("*", "/{path:.*}", self._garbage)
        else:
            app.router.add_get("/v1/models", self._models)
            app.router.add_post("/v1/chat/completions", self._chat)
        if self.batch_api and not self.garbage:
            app.router.add_post("/v1/files", self._upload)
            app.router.add_get("/v1/files/{file_id}/content", self._download)
            app.router.add_post("/v1/batches", self._create_batch)
            app.router.add_get("/v1/batches/{batch_id}", self._get_batch)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(sock), self._loop).result(timeout=10)
        return self

    async def _start(self, sock: socket.socket) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _stop(self) -> None:
        await self._runner.cleanup()
        # Handlers still sleeping on an injected "timeout" fault would otherwise be destroyed while pending.
        hanging = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in hanging:
            task.cancel()
        await asyncio.gather(*hanging, return_exceptions=True)

    def _next_fault(self, user: str) -> str | None:
        with self.lock:
            self.total += 1
            fault = self.faults_by_number.pop(self.total, None)
            if fault:
                return fault
            for needle, queue in self.faults_by_input.items():
                if needle in user and queue:
                    return queue.pop(0)
        return None

    async def _garbage(self, request: web.Request) -> web.Response:
        with self.lock:
            self.total += 1
        content_type, text = NOT_AN_ANSWER[self.garbage]
        return web.Response(text=text, content_type=content_type)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "fake"}]}
        )

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.lock:
            self.online += 1
        fault, status, payload = self._complete(body, request.headers.get("Authorization", ""))
        if self.delay_s and status == 200:
            await asyncio.sleep(self.delay_s)
        if fault == "timeout":
            await asyncio.sleep(self.hang_s)
        if fault in NOT_AN_ANSWER:
            content_type, text = NOT_AN_ANSWER[fault]
            return web.Response(text=text, content_type=content_type)
        headers = {"Retry-After": self.retry_after} if status in (429, 503) else {}
        return web.json_response(payload, status=status, headers=headers)

    def _complete(self, body: dict, authorization: str) -> tuple[str | None, int, dict]:
        """Shared by the chat endpoint and batch lines: (fault used, HTTP status, JSON body)."""
        schema = body.get("response_format", {})
        if schema.get("type") != "json_schema" or not schema["json_schema"].get("strict"):
            return None, 400, {"error": {"message": "expected strict json_schema response_format"}}
        kind = schema["json_schema"]["name"]
        user = body["messages"][-1]["content"]
        with self.lock:
            self.by_kind[kind] += 1
            self.by_input[user] += 1
            self.authorizations.add(authorization)
        fault = self._next_fault(user)
        if fault in ("400", "401", "429", "503", "500"):
            return fault, int(fault), {"error": {"message": f"injected {fault}"}}
        if kind == "translation":
            content = json.dumps({"text": MARKER + user})
        elif kind == "writtenclaims":
            content = json.dumps({"claims": written_claims(user)})
        elif kind == "supportcheck":
            content = json.dumps({"supported": supported(user)})
        else:
            label = int(re.search(r"Gold label: ([01])", user).group(1))
            concluded = 1 - label if fault == "disagree" else label
            content = json.dumps(
                {
                    "steps": ["Petikan menyatakan fakta.", f"Maka label ialah {concluded}."],
                    "conclusion_label": concluded,
                }
            )
        if fault == "bad_json":
            content = content[:-3]
        elif fault == "bad_schema":
            content = json.dumps({"answer": "tiada"})
        finish_reason = "stop"
        if fault == "length":
            content, finish_reason = content[: len(content) // 2], "length"
        prompt_tokens = sum(len(m["content"]) for m in body["messages"]) // 4
        completion = {
            "id": f"chatcmpl-{self.total}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt_tokens + len(content) // 4,
            },
        }
        if fault == "no_choices":
            completion["choices"] = []
        elif fault == "null_content":
            completion["choices"][0]["message"]["content"] = None
        return fault, 200, completion

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = form["file"].file.read()
        return web.json_response(self._file_object(file_id, form["purpose"]))

    def _file_object(self, file_id: str, purpose: str) -> dict:
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(self.files[file_id]),
            "created_at": 0,
            "filename": f"{file_id}.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    async def _download(self, request: web.Request) -> web.Response:
        return web.Response(body=self.files[request.match_info["file_id"]], content_type="application/octet-stream")

    async def _create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        batch_id = f"batch-{len(self.batches) + 1}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "completion_window": "24h",
            "input_file_id": body["input_file_id"],
            "created_at": 0,
            "status": "in_progress",
            "polls": 0,
        }
        return web.json_response(self.batches[batch_id])

    async def _get_batch(self, request: web.Request) -> web.Response:
        batch = self.batches[request.match_info["batch_id"]]
        batch["polls"] += 1
        # The first poll sees the batch still running, so clients must really poll.
        if batch["status"] == "in_progress" and batch["polls"] > 1:
            if self.expire_batches:
                batch.update(status="expired", request_counts={"total": 0, "completed": 0, "failed": 0})
            else:
                self._finish_batch(batch, request.headers.get("Authorization", ""))
        return web.json_response({k: v for k, v in batch.items() if k != "polls"})

    def _finish_batch(self, batch: dict, authorization: str) -> None:
        lines = []
        for line in self.files[batch["input_file_id"]].decode("utf-8").splitlines():
            item = json.loads(line)
            _, status, payload = self._complete(item["body"], authorization)
            lines.append(
                json.dumps(
                    {
                        "id": f"req-{len(lines)}",
                        "custom_id": item["custom_id"],
                        "error": None,
                        "response": {"status_code": status, "request_id": "r", "body": payload},
                    }
                )
            )
        output_id = f"file-{len(self.files) + 1}"
        self.files[output_id] = ("\n".join(lines) + "\n").encode("utf-8")
        counts = {"total": len(lines), "completed": len(lines), "failed": 0}
        batch.update(status="completed", output_file_id=output_id, request_counts=counts)
