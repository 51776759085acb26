"""The answer a judge writes, defined once: its JSON keys, their order, and the label tokens.

The training target, the strict parser (hakim.verdict), the place the verdict is read from, and the
OpenAI structured-output schema are all derived from `answer_keys`:
  V2: {"jawapan": 1}
  V3: {"penaakulan": "...", "jawapan": 1}     (reasoning first, the default)
      {"jawapan": 1, "penaakulan": "..."}     (verdict first)
Targets are written by `json.dumps`, never by pasting strings (the original V3 data was invalid JSON
because its reasoning was pasted in unescaped).
"""

from __future__ import annotations

import json

from hakim.prompting.style import PromptStyle

VERDICT_KEY = "jawapan"
REASONING_KEY = "penaakulan"
LABEL_TOKENS = {1: "1", 0: "0"}
_VERDICT_SLOT = "\u0000VERDICT\u0000"


def answer_keys(style: PromptStyle) -> tuple[str, ...]:
    if not style.writes_reasoning:
        return (VERDICT_KEY,)
    return (REASONING_KEY, VERDICT_KEY) if style.reasoning_first else (VERDICT_KEY, REASONING_KEY)


def target_parts(label: int, reasoning: str | None, style: PromptStyle) -> tuple[str, str, str]:
    """(text before the verdict, the verdict token text, text after it) of the serialized target."""
    if label not in LABEL_TOKENS:
        raise ValueError(f"label must be 0 or 1, got {label!r}")
    if style.writes_reasoning and not reasoning:
        raise ValueError("a V3 target needs reasoning; rows without it belong to V2 only")
    values = {VERDICT_KEY: _VERDICT_SLOT, REASONING_KEY: reasoning}
    serialized = json.dumps({key: values[key] for key in answer_keys(style)}, ensure_ascii=False)
    before, after = serialized.split(json.dumps(_VERDICT_SLOT))
    return before, LABEL_TOKENS[label], after


def target_text(label: int, reasoning: str | None, style: PromptStyle) -> str:
    return "".join(target_parts(label, reasoning, style))


def scoring_prefix(style: PromptStyle) -> str:
    """The answer text that precedes the verdict when the verdict comes first (V2, V3 verdict-first)."""
    if style.must_generate:
        raise ValueError("a reasoning-first V3 judge must generate its reasoning before a verdict can be scored")
    return target_parts(1, "-", style)[0]


def precedes_verdict(answer_so_far: str) -> bool:
    """Whether the next token of an answer is its verdict: the text so far ends with the verdict key."""
    return answer_so_far.rstrip().endswith(f'"{VERDICT_KEY}":')


def answer_shape(style: PromptStyle, verdict: str, reasoning: str = '"..."') -> str:
    """The answer as an instruction shows it, keys in the style's order:
    `{"penaakulan": "...", "jawapan": 1 atau 0}`."""
    values = {VERDICT_KEY: verdict, REASONING_KEY: reasoning}
    return "{" + ", ".join(f"{json.dumps(key)}: {values[key]}" for key in answer_keys(style)) + "}"


def json_schema(style: PromptStyle) -> dict:
    """Strict JSON schema of the answer, keys in the prompt's order (OpenAI structured output)."""
    types = {
        VERDICT_KEY: {"type": "integer", "enum": [int(token) for token in LABEL_TOKENS.values()]},
        REASONING_KEY: {"type": "string"},
    }
    keys = answer_keys(style)
    return {
        "type": "object",
        "properties": {key: types[key] for key in keys},
        "required": list(keys),
        "additionalProperties": False,
    }
