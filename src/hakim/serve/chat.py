"""The OpenAI chat-completions subset `evaluate.py judge=openai` speaks, answered by a local judge.

The request's user message must be Hakim's own prompt in the served judge's style; it is read back into
(passage, claim, task) and judged like any /v1/judge item, so truncation, passage focus and P(1) are the
local judge's. The answer is the JSON the judge writes: in score mode the verdict written out by the
answer schema (hakim.prompting.answer), in generate mode the text the judge generated.

Log probabilities: the answer schema (`response_format`) lets the verdict position hold only "1" or "0",
and every other character of a score-mode answer is fixed by it, so, as under constrained decoding, the
verdict's log probabilities are over those two tokens (log P(1) and log P(0) of the judge) and every other
piece has log probability 0. A client that reads P(1) from them (hakim.eval.openai_judge) gets the local
judge's P(1). The answer is split into pieces (words, digits, punctuation, spaces), not the model's
tokens; `max_tokens` counts those pieces.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid

from hakim.prompting.answer import LABEL_TOKENS, REASONING_KEY, VERDICT_KEY, answer_keys, precedes_verdict
from hakim.prompting.prompt import read_user_message
from hakim.prompting.style import PromptStyle
from hakim.serve.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatRequest,
    Choice,
    ChoiceLogprobs,
    TokenLogprob,
    TopLogprob,
)
from hakim.verdict import Verdict

PIECE = re.compile(r"\d|[^\W\d]+|\s+|[^\w\s]", re.UNICODE)
# log(0) is not a number JSON can carry; this is as unlikely as a float64 probability gets
LOWEST_LOGPROB = math.log(1e-300)


class NotAJudgeRequest(ValueError):
    """A chat request this judge cannot answer as asked; the message says what to send instead."""


def item_of(request: ChatRequest, style: PromptStyle) -> tuple[str, str, str]:
    """The (passage, claim, task) a chat request asks about. System messages are ignored: a Hakim judge was
    trained on the user message alone."""
    users = [message for message in request.messages if message.role == "user"]
    if len(users) != 1 or request.messages[-1].role != "user":
        raise NotAJudgeRequest("messages: send one user message (Hakim's judge prompt), last")
    expected = set(answer_keys(style))
    if request.response_format is not None and request.response_format.json_schema is not None:
        asked = set(request.response_format.json_schema.schema_.get("properties", {}))
        if asked != expected:
            raise NotAJudgeRequest(
                f"response_format: this judge answers with the keys {sorted(expected)}, not {sorted(asked)}"
            )
    try:
        return read_user_message(users[0].text, style)
    except ValueError as error:
        raise NotAJudgeRequest(f"messages: {error}") from None


def answer_text(verdict: Verdict, style: PromptStyle) -> str:
    """What the judge answered: its own text when it generated one, else the verdict written by the schema."""
    if verdict.raw_output is not None:
        return verdict.raw_output
    values = {VERDICT_KEY: verdict.label, REASONING_KEY: verdict.reasoning or ""}
    return json.dumps({key: values[key] for key in answer_keys(style)}, ensure_ascii=False)


def _verdict_piece(pieces: list[str]) -> int | None:
    """Index of the piece that is the verdict digit (the last digit right after the verdict key), as the judge
    reads it."""
    text, found = "", None
    for index, piece in enumerate(pieces):
        if piece in LABEL_TOKENS.values() and precedes_verdict(text):
            found = index
        text += piece
    return found


def _logprob(probability: float) -> float:
    return math.log(probability) if probability > 0 else LOWEST_LOGPROB


def _entry(token: str, logprob: float, top: list[tuple[str, float]]) -> TokenLogprob:
    return TokenLogprob(
        token=token,
        logprob=logprob,
        bytes=list(token.encode()),
        top_logprobs=[TopLogprob(token=t, logprob=lp, bytes=list(t.encode())) for t, lp in top],
    )


def _logprobs(pieces: list[str], verdict: Verdict, top_n: int) -> ChoiceLogprobs:
    at = _verdict_piece(pieces) if verdict.probability is not None else None
    entries = []
    for index, piece in enumerate(pieces):
        if index == at:
            labels = {
                LABEL_TOKENS[1]: _logprob(verdict.probability),
                LABEL_TOKENS[0]: _logprob(1 - verdict.probability),
            }
            top = sorted(labels.items(), key=lambda pair: -pair[1])[:top_n]
            entries.append(_entry(piece, labels[piece], top))
        else:
            entries.append(_entry(piece, 0.0, [(piece, 0.0)][:top_n]))
    return ChoiceLogprobs(content=entries)


def completion(request: ChatRequest, verdict: Verdict, style: PromptStyle, model: str) -> ChatCompletion:
    pieces = PIECE.findall(answer_text(verdict, style))
    limit = request.max_completion_tokens or request.max_tokens
    finish = "stop"
    if limit is not None and len(pieces) > limit:
        pieces, finish = pieces[:limit], "length"
    # A verdict without P(1) (an answer that did not parse, or no verdict position) sends no log probabilities:
    # the client then reads the parsed answer, as from any server that offers none.
    logprobs = (
        _logprobs(pieces, verdict, request.top_logprobs or 0)
        if request.logprobs and verdict.probability is not None
        else None
    )
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model,
        choices=[Choice(message=AssistantMessage(content="".join(pieces)), finish_reason=finish, logprobs=logprobs)],
    )
