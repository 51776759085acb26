"""The HTTP face of a local judge: `create_app(load, settings)` → a FastAPI app (OpenAPI docs at /docs, offline).

The model loads in the background, so /healthz answers at once and /readyz says when the judge is there.
Every error is JSON in the OpenAI shape, `{"error": {"message", "type", "param", "code"}}`, so OpenAI clients
show the message; a 500 says only that the server failed (the traceback goes to the server's log). Request
bodies and the API key are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException

from hakim.eval.judges import LocalJudge
from hakim.serve.batcher import Batcher, QueueFull, Unjudged
from hakim.serve.chat import NotAJudgeRequest, completion, item_of
from hakim.serve.schemas import (
    ChatCompletion,
    ChatRequest,
    FileVerdict,
    FileVerdicts,
    Health,
    Item,
    ItemVerdict,
    JudgeRequest,
    JudgeResponse,
    ModelCard,
    ModelList,
)
from hakim.serve.settings import ServeSettings
from hakim.serve.uploads import BadUpload, Columns, read_upload
from hakim.verdict import Verdict

PAGE_DIR = Path(__file__).parent / "page"
# The page's own files and nothing else: a judge's output shown on it can never load or run anything.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
ERROR_RESPONSES = {
    status: {"description": text}
    for status, text in {
        401: "no or wrong `Authorization: Bearer` key (with api_key_env set)",
        413: "the body is over max_body_mb",
        422: "a malformed request: the message names the item index and field",
        503: "the model is still loading, or the queue is full: retry after Retry-After seconds",
    }.items()
}

log = logging.getLogger("hakim.serve")


class ApiError(HTTPException):
    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None, headers: dict | None = None
    ):
        super().__init__(status, message, headers)
        self.param, self.code = param, code


def _error(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers=None,
    errors: list | None = None,
) -> JSONResponse:
    kind = {401: "authentication_error", 404: "not_found_error", 503: "overloaded_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    if errors is not None:
        body["error"]["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


def _location(loc) -> str:
    """("body", "items", 2, "claim") → "items[2].claim"."""
    text = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _reason(error: dict) -> str:
    if error["type"] == "json_invalid":
        return f"not valid JSON ({error.get('ctx', {}).get('error', 'decode error')})"
    if tuple(error["loc"]) == ("body",) and error["type"] == "model_attributes_type":
        return "must be a JSON object, sent with Content-Type: application/json"
    return error["msg"]


class BodyLimit:
    """Refuses a body over `max_bytes` (413): at once when Content-Length says so, else as the chunks arrive."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = HTTPException(413, f"the request body is over {self.max_bytes / 2**20:g} MB (serve max_body_mb)")
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = _error(413, too_large.detail)
            return await response(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise too_large  # FastAPI passes an HTTPException raised while reading the body on as it is
            return message

        await self.app(scope, counted, send)


class Served:
    """The loaded judge and its batcher, once there."""

    def __init__(self):
        self.judge: LocalJudge | None = None
        self.batcher: Batcher | None = None
        self.failed = False

    def ready(self) -> tuple[LocalJudge, Batcher]:
        if self.judge is None:
            raise ApiError(
                503,
                "the judge failed to load: see the server's log"
                if self.failed
                else "the judge is still loading; GET /readyz says when it is ready",
                headers={"Retry-After": "5"},
            )
        return self.judge, self.batcher


def create_app(
    load: Callable[[], LocalJudge],
    settings: ServeSettings,
    on_load_failure: Callable[[BaseException], None] = lambda error: None,
) -> FastAPI:
    """`load` builds the judge (in a thread, after the server starts); `on_load_failure` hears if it fails."""
    served = Served()
    key = settings.api_key()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = asyncio.get_running_loop().run_in_executor(None, load)

        async def ready_when_loaded():
            try:
                judge = await loading
            except Exception as error:
                served.failed = True
                log.error("the judge failed to load: %s: %s", type(error).__name__, error)
                on_load_failure(error)
                return
            served.batcher = Batcher(judge.judge_batch, settings.max_batch, settings.max_wait_ms, settings.max_queue)
            served.batcher.start()
            served.judge = judge
            log.info("ready: %s (%s mode)", name_of(judge), judge.default_mode)

        waiting = asyncio.create_task(ready_when_loaded())
        yield
        # uvicorn has finished the requests in flight: nothing is left waiting for the model
        await asyncio.gather(waiting, return_exceptions=True)
        if served.batcher is not None:
            await served.batcher.stop()

    def name_of(judge: LocalJudge) -> str:
        return settings.served_name or judge.name

    # FastAPIOffline: /docs and /redoc from files installed with it, where FastAPI's own load them from a CDN
    app = FastAPIOffline(
        title="Hakim judge",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        description="A Hakim judge: is the claim (a yes/no question, a summary, a statement) "
        "supported by the passage? `POST /v1/judge` for verdicts, `POST /v1/chat/completions` "
        "for OpenAI-compatible clients, `/` for the page.",
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    bearer = HTTPBearer(auto_error=False, description="the value of $api_key_env, when the server was started with one")

    def require_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if key is None:
            return
        # compare_digest: the time taken says nothing about how much of a guess was right
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), key.encode()):
            raise ApiError(
                401,
                "send the server's key as `Authorization: Bearer <key>`",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return _error(
            error.status_code,
            str(error.detail),
            getattr(error, "param", None),
            getattr(error, "code", None),
            error.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        # Each problem by location and reason only: the input itself is never echoed back or logged.
        problems = [{"loc": _location(e["loc"]), "msg": _reason(e)} for e in error.errors()]
        message = "; ".join(f"{p['loc']}: {p['msg']}" for p in problems[:10])
        return _error(422, message, problems[0]["loc"] if problems else None, errors=problems[:50])

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception):
        # uvicorn logs the traceback after this answer is sent; the caller learns only that it failed
        log.error("%s %s failed with %s", request.method, request.url.path, type(error).__name__)
        return _error(500, "the server failed to answer this request; its log says why")

    async def judge_rows(batcher: Batcher, items: list[tuple[str, str, str]], mode: str):
        try:
            return await batcher.judge(items, mode)
        except QueueFull as full:
            raise ApiError(
                503,
                f"the judge is busy ({full}); retry in {settings.retry_after_s} s",
                headers={"Retry-After": str(settings.retry_after_s)},
            ) from None

    def mode_of(judge: LocalJudge, mode: str | None) -> str:
        if mode is not None and mode not in judge.modes:
            raise ApiError(422, f"mode: must be one of {list(judge.modes)}, got {mode!r}", param="mode")
        return mode or judge.default_mode

    def verdict_out(judge: LocalJudge, task: str, result: Verdict | Unjudged, language: str | None) -> dict:
        threshold = judge.thresholds.for_source(task)
        if isinstance(result, Unjudged):
            return dict(label=None, probability=None, threshold=threshold, error=result.reason, language=language)
        return dict(
            label=result.label,
            probability=result.probability,
            threshold=threshold,
            reasoning=result.reasoning,
            truncated=result.truncated,
            unparsed=result.parse_error,
            raw_output=result.raw_output,
            language=language,
            chunk=result.chunk,
            chunk_count=result.chunk_count,
            chunk_text=result.chunk_text,
            claim_sentence=result.claim_sentence,
        )

    async def passages_read(judge: LocalJudge, items: list[Item], results: list, mode: str) -> list[str | None]:
        def read_all():
            read = []
            for item, result in zip(items, results, strict=True):
                if isinstance(result, Verdict) and result.chunk is not None:
                    read.append(result.chunk_text)  # a chunked judge read several; the one that decided
                    continue
                try:
                    read.append(judge.passage_as_read(item.passage, item.claim, item.task, mode))
                except ValueError:  # the claim alone does not fit: the verdict's error says so
                    read.append(None)
            return read

        return await asyncio.get_running_loop().run_in_executor(None, read_all)

    @app.get("/healthz", response_model=Health, response_model_exclude_none=True, tags=["health"])
    async def healthz() -> Health:
        """The process answers (the model may still be loading)."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        response_model_exclude_none=True,
        tags=["health"],
        responses={503: {"model": Health}},
    )
    async def readyz():
        """The judge is loaded and takes requests; also what the page needs to know and how batching goes."""
        if served.judge is None:
            return JSONResponse(Health(status="failed" if served.failed else "loading").model_dump(), status_code=503)
        stats = served.batcher.stats
        return Health(
            status="ready",
            model=name_of(served.judge),
            default_mode=served.judge.default_mode,
            modes=list(served.judge.modes),
            auth_required=key is not None,
            max_items=settings.max_items,
            queued_rows=served.batcher.queued_rows,
            rows_admitted=stats.rows_admitted,
            model_calls=stats.model_calls,
            rows_judged=stats.rows_judged,
            largest_batch=stats.largest_batch,
        )

    @app.get("/v1/models", response_model=ModelList, dependencies=[Depends(require_key)], tags=["openai"])
    async def models() -> ModelList:
        judge, _ = served.ready()
        return ModelList(data=[ModelCard(id=name_of(judge))])

    @app.post("/v1/judge", response_model=JudgeResponse, dependencies=[Depends(require_key)], tags=["judge"])
    async def judge_items(request: JudgeRequest) -> JudgeResponse:
        """One verdict per item, in order."""
        judge, batcher = served.ready()
        if len(request.items) > settings.max_items:
            raise ApiError(
                422,
                f"items: at most {settings.max_items} per request (serve max_items), got {len(request.items)}",
                param="items",
            )
        mode = mode_of(judge, request.mode)
        results = await judge_rows(batcher, [(i.passage, i.claim, i.task) for i in request.items], mode)
        read = (
            await passages_read(judge, request.items, results, mode)
            if request.return_passage
            else [None] * len(results)
        )
        verdicts = [
            ItemVerdict(**verdict_out(judge, item.task, result, item.language), passage_read=passage)
            for item, result, passage in zip(request.items, results, read, strict=True)
        ]
        return JudgeResponse(model=name_of(judge), mode=mode, verdicts=verdicts)

    @app.post("/v1/judge/file", response_model=FileVerdicts, dependencies=[Depends(require_key)], tags=["judge"])
    async def judge_file(
        file: UploadFile = File(description="JSON Lines, a JSON array, CSV or Parquet"),
        passage_column: str = Form("passage"),
        claim_column: str = Form("claim"),
        task_column: str | None = Form(None),
        task: str = Form("default"),
        language_column: str = Form("language"),
        mode: str | None = Form(None),
    ) -> FileVerdicts:
        """Every row of a file, with the column names `evaluate.py rows=` takes."""
        judge, batcher = served.ready()
        mode = mode_of(judge, mode or None)
        columns = Columns(passage_column, claim_column, task_column or None, task or "default", language_column)
        data = await file.read()
        try:
            rows = await asyncio.get_running_loop().run_in_executor(
                None, read_upload, data, file.filename, columns, settings.max_file_rows
            )
        except BadUpload as bad:
            raise ApiError(422, str(bad), param="file") from None
        out = []
        # One request's worth at a time: a large file takes its turns with everyone else's requests.
        for start in range(0, len(rows), settings.max_items):
            chunk = rows[start : start + settings.max_items]
            results = await judge_rows(batcher, [(r.passage, r.claim, r.task) for r in chunk], mode)
            out += [
                FileVerdict(
                    **verdict_out(judge, row.task, result, row.language),
                    row=row.location,
                    passage=row.passage,
                    claim=row.claim,
                    task=row.task,
                )
                for row, result in zip(chunk, results, strict=True)
            ]
        return FileVerdicts(model=name_of(judge), mode=mode, rows=out)

    @app.post(
        "/v1/chat/completions", response_model=ChatCompletion, dependencies=[Depends(require_key)], tags=["openai"]
    )
    async def chat_completions(request: ChatRequest) -> ChatCompletion:
        """The subset of OpenAI's chat completions `evaluate.py judge=openai` uses, for Hakim's judge prompt."""
        judge, batcher = served.ready()
        if request.model != name_of(judge):
            raise ApiError(
                404,
                f"model {request.model!r} is not served here; this server serves {name_of(judge)!r}",
                param="model",
                code="model_not_found",
            )
        try:
            item = item_of(request, judge.style)
        except NotAJudgeRequest as error:
            raise ApiError(400, str(error), param="messages") from None
        [result] = await judge_rows(batcher, [item], judge.default_mode)
        if isinstance(result, Unjudged):
            raise ApiError(400, result.reason, param="messages", code="context_length_exceeded")
        return completion(request, result, judge.style, name_of(judge))

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(PAGE_DIR / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    app.mount("/page", StaticFiles(directory=PAGE_DIR), name="page")
    return app
