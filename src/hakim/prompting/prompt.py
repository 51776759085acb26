"""The judge's prompt, its training target and the label tokens, defined once.

Training, validation, evaluation and the judge API all build inputs through `encode_example` and
`encode_prompt`, so the verdict token sits at the same place in every one of them.

Targets are JSON written by `json.dumps`, never by string pasting (the original V3 data was
invalid JSON because reasoning was pasted in unescaped):
  V2: {"jawapan": 1}
  V3: {"penaakulan": "...", "jawapan": 1}     (reasoning first, the default)
      {"jawapan": 1, "penaakulan": "..."}     (verdict first)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from hakim.prompting.passage_focus import focus_passage

VERDICT_KEY = "jawapan"
REASONING_KEY = "penaakulan"
LABEL_TOKENS = {1: "1", 0: "0"}
VARIANTS = ("v2", "v3")
CLAIM_POSITIONS = ("after", "before", "both")
_VERDICT_SLOT = "\u0000VERDICT\u0000"

INSTRUCTIONS = {
    "ms": {
        "boolq": (
            "Baca petikan di bawah dan jawab soalan ya/tidak berdasarkan petikan itu sahaja. "
            "Jawab 1 jika jawapannya ya, 0 jika tidak."
        ),
        "fib": (
            "Baca dokumen di bawah dan tentukan sama ada ringkasan itu konsisten dengan dokumen dari segi fakta. "
            "Jawab 1 jika konsisten, 0 jika tidak konsisten."
        ),
        "default": (
            "Baca dokumen di bawah dan tentukan sama ada pernyataan itu disokong oleh dokumen. "
            "Jawab 1 jika disokong, 0 jika tidak."
        ),
        "passage": "Dokumen",
        "claim": {"boolq": "Soalan", "fib": "Ringkasan", "default": "Pernyataan"},
        "format_v2": 'Balas dengan JSON sahaja: {"jawapan": 1} atau {"jawapan": 0}.',
        "format_v3": 'Fikir langkah demi langkah, kemudian balas dengan JSON sahaja: {"penaakulan": "...", "jawapan": 1 atau 0}.',
        "format_v3_verdict_first": 'Balas dengan JSON sahaja: {"jawapan": 1 atau 0, "penaakulan": "..."}.',
    },
    "en": {
        "boolq": "Read the passage below and answer the yes/no question from the passage alone. Answer 1 for yes, 0 for no.",
        "fib": "Read the document below and decide whether the summary is factually consistent with it. Answer 1 if consistent, 0 if not.",
        "default": "Read the document below and decide whether the statement is supported by it. Answer 1 if supported, 0 if not.",
        "passage": "Document",
        "claim": {"boolq": "Question", "fib": "Summary", "default": "Statement"},
        "format_v2": 'Reply with JSON only: {"jawapan": 1} or {"jawapan": 0}.',
        "format_v3": 'Think step by step, then reply with JSON only: {"penaakulan": "...", "jawapan": 1 or 0}.',
        "format_v3_verdict_first": 'Reply with JSON only: {"jawapan": 1 or 0, "penaakulan": "..."}.',
    },
}


@dataclass(frozen=True)
class PromptStyle:
    """What varies between recipes: the variant, the instruction language, the verdict position, and
    where the claim stands relative to the passage (a decoder reads left to right: a claim placed
    before the passage lets every passage token be read in its light)."""

    variant: str = "v2"
    instruction_language: str = "ms"
    reasoning_first: bool = True
    claim_position: str = "after"  # after | before | both (before and again after the passage)
    passage_sentences: int | None = None  # keep only the N sentences closest to the claim (passage_focus)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.instruction_language not in INSTRUCTIONS:
            raise ValueError(f"instruction_language must be one of {tuple(INSTRUCTIONS)}, got {self.instruction_language!r}")
        if self.claim_position not in CLAIM_POSITIONS:
            raise ValueError(f"claim_position must be one of {CLAIM_POSITIONS}, got {self.claim_position!r}")
        if self.passage_sentences is not None and self.passage_sentences < 1:
            raise ValueError(f"passage_sentences must be at least 1 or null, got {self.passage_sentences!r}")


def user_message(passage: str, claim: str, source: str, style: PromptStyle) -> str:
    text = INSTRUCTIONS[style.instruction_language]
    task = text.get(source, text["default"])
    claim_name = text["claim"].get(source, text["claim"]["default"])
    if style.variant == "v2":
        answer_format = text["format_v2"]
    else:
        answer_format = text["format_v3"] if style.reasoning_first else text["format_v3_verdict_first"]
    if style.passage_sentences is not None:
        passage = focus_passage(passage, claim, style.passage_sentences)
    claim_line = f"{claim_name}: {claim}\n\n"
    before = claim_line if style.claim_position in ("before", "both") else ""
    after = claim_line if style.claim_position in ("after", "both") else ""
    return f"{task}\n\n{before}{text['passage']}:\n{passage}\n\n{after}{answer_format}"


def render_prompt(tokenizer, passage: str, claim: str, source: str, style: PromptStyle) -> str:
    """The full prompt text up to where the judge's answer starts."""
    message = user_message(passage, claim, source, style)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], add_generation_prompt=True, tokenize=False
        )
    return f"[INST] {message} [/INST]"


def target_parts(label: int, reasoning: str | None, style: PromptStyle) -> tuple[str, str, str]:
    """(text before the verdict, the verdict token text, text after it) of the serialized target."""
    if label not in LABEL_TOKENS:
        raise ValueError(f"label must be 0 or 1, got {label!r}")
    if style.variant == "v2":
        answer = {VERDICT_KEY: _VERDICT_SLOT}
    else:
        if not reasoning:
            raise ValueError("a V3 target needs reasoning; rows without it belong to V2 only")
        if style.reasoning_first:
            answer = {REASONING_KEY: reasoning, VERDICT_KEY: _VERDICT_SLOT}
        else:
            answer = {VERDICT_KEY: _VERDICT_SLOT, REASONING_KEY: reasoning}
    serialized = json.dumps(answer, ensure_ascii=False)
    before, after = serialized.split(json.dumps(_VERDICT_SLOT))
    return before, LABEL_TOKENS[label], after


def target_text(label: int, reasoning: str | None, style: PromptStyle) -> str:
    return "".join(target_parts(label, reasoning, style))


@dataclass(frozen=True)
class ParsedVerdict:
    label: int | None
    reasoning: str | None
    error: str | None


def parse_verdict(text: str) -> ParsedVerdict:
    """Strictly read a judge's answer: one JSON object whose verdict is the number 0 or 1.

    Anything else is `label=None` with the reason; callers count it as unparsed, never as a class.
    """
    stripped = text.strip()
    try:
        answer, end = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError as error:
        return ParsedVerdict(None, None, f"not JSON: {error.msg}")
    if stripped[end:].strip():
        return ParsedVerdict(None, None, "text after the JSON object")
    if not isinstance(answer, dict) or VERDICT_KEY not in answer:
        return ParsedVerdict(None, None, f"no '{VERDICT_KEY}' key")
    verdict = answer[VERDICT_KEY]
    if isinstance(verdict, bool) or verdict not in (0, 1):
        return ParsedVerdict(None, None, f"verdict {verdict!r} is not 0 or 1")
    reasoning = answer.get(REASONING_KEY)
    return ParsedVerdict(int(verdict), reasoning if isinstance(reasoning, str) else None, None)


def label_token_ids(tokenizer) -> dict[int, int]:
    """Token id of each label; refuses a tokenizer that cannot say '1' or '0' in one token."""
    ids = {}
    for label, token in LABEL_TOKENS.items():
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id:
            raise ValueError(f"tokenizer has no single token for the label {token!r}; Hakim needs one per label")
        ids[label] = token_id
    if ids[0] == ids[1]:
        raise ValueError("the two label tokens map to the same id")
    return ids


IGNORE_INDEX = -100
TRUNCATION_MARK = " …"


@dataclass(frozen=True)
class EncodedExample:
    """Token ids with the completion mask: labels are IGNORE_INDEX on the prompt, ids on the answer."""

    input_ids: list[int]
    labels: list[int]
    verdict_index: int
    prompt_length: int
    truncated: bool


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_prompt(tokenizer, passage: str, claim: str, source: str, style: PromptStyle) -> list[int]:
    ids = _ids(tokenizer, render_prompt(tokenizer, passage, claim, source, style))
    if not getattr(tokenizer, "chat_template", None) and tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def _fit_passage(tokenizer, passage: str, claim: str, source: str, style: PromptStyle, reserved: int, max_length: int):
    """Prompt ids whose passage is cut (with a mark) until `reserved` more tokens fit in max_length.

    A focused passage (style.passage_sentences) is focused once, here, and cut after, so the cut falls
    on the sentences the judge will read; the prompts below are rendered without focusing again.
    """
    if style.passage_sentences is not None:
        passage = focus_passage(passage, claim, style.passage_sentences)
        style = replace(style, passage_sentences=None)
    original_ids = None
    truncated = False
    for _ in range(6):
        prompt = encode_prompt(tokenizer, passage, claim, source, style)
        overflow = len(prompt) + reserved - max_length
        if overflow <= 0:
            return prompt, truncated
        if original_ids is None:
            original_ids = _ids(tokenizer, passage)
        keep = len(_ids(tokenizer, passage)) - overflow - len(_ids(tokenizer, TRUNCATION_MARK)) - 1
        if keep <= 0:
            return None
        original_ids = original_ids[:keep]
        passage = tokenizer.decode(original_ids).rstrip() + TRUNCATION_MARK
        truncated = True
    return None


def encode_example(
    tokenizer, record, style: PromptStyle, max_length: int, label_ids: dict[int, int]
) -> EncodedExample | None:
    """Prompt + target as ids, cutting only the passage when too long; None if even that cannot fit.

    The claim, the reasoning and the verdict are never cut: a judge trained on half a claim learns
    to judge something else.
    """
    before, _, after = target_parts(record.label, record.reasoning, style)
    before_ids = _ids(tokenizer, before)
    completion = before_ids + [label_ids[record.label]] + _ids(tokenizer, after)
    if tokenizer.eos_token_id is not None:
        completion.append(tokenizer.eos_token_id)
    fitted = _fit_passage(tokenizer, record.passage, record.claim, record.source, style, len(completion), max_length)
    if fitted is None:
        return None
    prompt, truncated = fitted
    return EncodedExample(
        input_ids=prompt + completion,
        labels=[IGNORE_INDEX] * len(prompt) + completion,
        verdict_index=len(prompt) + len(before_ids),
        prompt_length=len(prompt),
        truncated=truncated,
    )


def scoring_prefix(style: PromptStyle) -> str:
    """The answer text that precedes the verdict when the verdict comes first (V2, V3 verdict-first)."""
    if style.variant == "v3" and style.reasoning_first:
        raise ValueError("a reasoning-first V3 judge must generate its reasoning before a verdict can be scored")
    return target_parts(1, None, PromptStyle("v2", style.instruction_language))[0]


def encode_for_scoring(tokenizer, passage: str, claim: str, source: str, style: PromptStyle, max_length: int):
    """Ids of prompt + answer prefix, whose last position predicts the verdict token; (ids, truncated)."""
    prefix = _ids(tokenizer, scoring_prefix(style))
    fitted = _fit_passage(tokenizer, passage, claim, source, style, len(prefix) + 1, max_length)
    if fitted is None:
        raise ValueError(f"claim too long to judge within max_length={max_length}, even without its passage")
    prompt, truncated = fitted
    return prompt + prefix, truncated


def encode_for_generation(tokenizer, passage: str, claim: str, source: str, style: PromptStyle, max_length: int, max_new_tokens: int):
    fitted = _fit_passage(tokenizer, passage, claim, source, style, max_new_tokens, max_length)
    if fitted is None:
        raise ValueError(f"claim too long to judge within max_length={max_length} and {max_new_tokens} new tokens")
    return fitted
