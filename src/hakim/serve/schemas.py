"""The served judge's requests and responses, as pydantic models: validation, error locations and /docs come from them.

Strings are strict (a number where a passage should be is refused, never turned into text) and items refuse
unknown fields, so a misspelt `pasage` is named instead of silently judged as an empty passage.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[StrictStr, AfterValidator(_not_blank)]


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passage: Text
    claim: Text = Field(description="the yes/no question (boolq), the summary (fib) or any statement")
    task: Text = Field("default", description="boolq | fib | any other name (asked as a plain statement)")
    language: Literal["ms", "en"] | None = Field(
        None,
        description="the row's language, returned with its verdict; "
        "the judge is always asked in the instruction language it was trained with",
    )


class JudgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[Item] = Field(min_length=1)
    mode: StrictStr | None = Field(None, description="score | generate; default: the judge's own")
    return_passage: bool = Field(
        False, description="also return each passage as the judge read it (focused, cut to fit)"
    )


class ItemVerdict(BaseModel):
    label: int | None = Field(description="1: the claim holds, 0: it does not, null: no verdict (see unparsed, error)")
    probability: float | None = Field(description="P(1); null when the judge gave none")
    threshold: float = Field(description="the cut on P(1) this item's task was labelled with")
    reasoning: str | None = None
    truncated: bool = Field(
        False,
        description="the passage was cut to fit the judge's max length (with chunking: a "
        "sentence longer than a chunk was cut into pieces)",
    )
    unparsed: str | None = Field(None, description="why the judge's answer did not parse (generate mode)")
    error: str | None = Field(None, description="why this item could not be judged at all; the others still are")
    raw_output: str | None = Field(None, description="what the judge wrote, in generate mode")
    language: str | None = None
    passage_read: str | None = Field(
        None,
        description="with return_passage: the passage as the judge read it (with chunking: the chunk that decided)",
    )
    chunk: int | None = Field(
        None,
        description="with chunking: the chunk whose verdict decided (from 0, in passage "
        "order): the most supportive chunk of the least supported claim sentence",
    )
    chunk_count: int | None = Field(None, description="with chunking: how many chunks the passage was read in")
    chunk_text: str | None = Field(None, description="with chunking: the deciding chunk as the judge read it")
    claim_sentence: int | None = Field(
        None,
        description="with chunking.split_claim and a claim of several sentences: "
        "the sentence (from 0) the deciding chunk was judged against",
    )


class JudgeResponse(BaseModel):
    model: str
    mode: str
    verdicts: list[ItemVerdict]


class FileVerdict(ItemVerdict):
    row: str = Field(description="file:line (or file:row N) the item came from")
    passage: str
    claim: str
    task: str


class FileVerdicts(BaseModel):
    model: str
    mode: str
    rows: list[FileVerdict]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "hakim"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: str = Field(description="ok (/healthz) | loading | failed | ready (/readyz)")
    model: str | None = None
    default_mode: str | None = None
    modes: list[str] | None = None
    auth_required: bool | None = None
    max_items: int | None = None
    queued_rows: int | None = None
    rows_admitted: int | None = None
    model_calls: int | None = None
    rows_judged: int | None = None
    largest_batch: int | None = None


# ---------------------------------------------------------------- the OpenAI chat subset


class TextPart(BaseModel):
    type: Literal["text"]
    text: StrictStr


class ChatMessage(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: StrictStr | list[TextPart]

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class JsonSchemaSpec(BaseModel):
    name: StrictStr
    schema_: dict = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class ChatRequest(BaseModel):
    # OpenAI clients send more (user, seed, stop, ...); a judge has no use for them, so they are ignored.
    model_config = ConfigDict(extra="ignore")

    model: StrictStr
    messages: list[ChatMessage] = Field(min_length=1)
    response_format: ResponseFormat | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    n: int = Field(1, ge=1, le=1, description="one answer per request")
    stream: Literal[False] = Field(False, description="streaming is not offered: a verdict is a few tokens")


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob]
    refusal: None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
