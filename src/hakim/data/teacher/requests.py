"""What the teacher is asked, the shape its answer must have, and the cache key of each question."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from hakim.data.teacher.settings import TeacherSettings

LANGUAGE_NAMES = {"ms": "standard Malaysian Malay (Bahasa Melayu)", "en": "English"}

TRANSLATE_SYSTEM = (
    "You are a professional English-to-Malay translator. Translate the user's text into standard "
    "Malaysian Malay (Bahasa Melayu). Keep every fact, name, number and date; do not add, drop, "
    "summarise or explain anything. A question stays a question. Answer as JSON with one field, text."
)
REASON_SYSTEM = (
    "You teach a model to judge whether a claim is consistent with a passage. You are given the passage, "
    "the claim and the correct label: 1 means the passage supports the claim (for a yes/no question: the "
    "answer is yes), 0 means it does not. Write 2 to 6 short steps in {language} that quote or point to "
    "the passage and lead to the correct label. Set conclusion_label to the label your steps reach."
)
REASON_USER = "Passage:\n{passage}\n\nClaim:\n{claim}\n\nGold label: {label}"
# A second attempt must differ from the first, or a cached or deterministic teacher repeats its mistake.
REASON_NUDGE = (
    "\n\nAn earlier explanation for this pair reached the wrong label. Read the passage again, "
    "sentence by sentence; your steps must end at label {label}."
)

TEMPLATE_VERSION = hashlib.sha256(
    "\x00".join((TRANSLATE_SYSTEM, REASON_SYSTEM, REASON_USER, REASON_NUDGE)).encode("utf-8")
).hexdigest()[:12]


class Translation(BaseModel):
    """The translated text."""

    model_config = ConfigDict(extra="forbid")
    text: str

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty translation")
        return value.strip()


class Reasoning(BaseModel):
    """Steps that explain a label, and the label they reach."""

    model_config = ConfigDict(extra="forbid")
    steps: list[str]
    conclusion_label: Literal[0, 1]

    @field_validator("steps")
    @classmethod
    def _steps_present(cls, value: list[str]) -> list[str]:
        steps = [step.strip() for step in value]
        if not steps or not all(steps):
            raise ValueError("reasoning needs at least one step and no empty steps")
        return steps

    def text(self) -> str:
        return "\n".join(f"{number}. {step}" for number, step in enumerate(self.steps, start=1))


def response_format(schema: type[BaseModel]) -> dict:
    """Structured-outputs request body for a flat pydantic model (strict mode: every field required)."""
    json_schema = schema.model_json_schema()
    json_schema["required"] = list(json_schema["properties"])
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.__name__.lower(), "schema": json_schema, "strict": True},
    }


@dataclass(frozen=True)
class TeacherRequest:
    """One question for the teacher; equal questions share one key, one request and one cache row."""

    kind: str
    system: str
    user: str
    schema: type[BaseModel]
    model: str
    salt: str

    @property
    def key(self) -> str:
        identity = [self.model, TEMPLATE_VERSION, self.kind, self.system, self.user, self.salt]
        return hashlib.sha256(json.dumps(identity, ensure_ascii=False).encode("utf-8")).hexdigest()

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]

    def estimated_input_tokens(self) -> int:
        return estimate_tokens(self.system) + estimate_tokens(self.user)


def estimate_tokens(text: str) -> int:
    """About four characters per token; close enough for budgets and rate limits."""
    return len(text) // 4 + 1


def translation_request(text: str, settings: TeacherSettings) -> TeacherRequest:
    return TeacherRequest("translate", TRANSLATE_SYSTEM, text, Translation, settings.model, settings.cache_salt)


def reasoning_request(passage: str, claim: str, label: int, settings: TeacherSettings, attempt: int) -> TeacherRequest:
    """attempt 0 is the plain question; attempt 1 adds a nudge, so it is a new request and a new cache row."""
    language = LANGUAGE_NAMES.get(settings.reasoning_language, settings.reasoning_language)
    user = REASON_USER.format(passage=passage, claim=claim, label=label)
    if attempt:
        user += REASON_NUDGE.format(label=label)
    salt = f"{settings.cache_salt}#attempt{attempt}"
    return TeacherRequest("reason", REASON_SYSTEM.format(language=language), user, Reasoning, settings.model, salt)
