"""The judge's prompt and the token ids of prompt + answer, with the completion mask.

Training, validation, evaluation, the probe and the judge API all build inputs through
`encode_example`, `encode_for_scoring` and `encode_for_generation`, so the verdict token sits at the
same place in every one of them. The answer's shape is hakim.prompting.answer's.
"""

from __future__ import annotations

from dataclasses import dataclass

from hakim.prompting.answer import LABEL_TOKENS, answer_shape, scoring_prefix, target_parts
from hakim.prompting.passage_focus import focus_passage
from hakim.prompting.style import PromptStyle

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
        # {one}, {zero}, {either}: the answer's JSON as hakim.prompting.answer defines it (_answer_format)
        "format_v2": "Balas dengan JSON sahaja: {one} atau {zero}.",
        "format_v3": "Fikir langkah demi langkah, kemudian balas dengan JSON sahaja: {either}.",
        "format_v3_verdict_first": "Balas dengan JSON sahaja: {either}.",
        "or": "atau",
    },
    "en": {
        "boolq": "Read the passage below and answer the yes/no question from the passage alone. Answer 1 for yes, 0 for no.",
        "fib": "Read the document below and decide whether the summary is factually consistent with it. Answer 1 if consistent, 0 if not.",
        "default": "Read the document below and decide whether the statement is supported by it. Answer 1 if supported, 0 if not.",
        "passage": "Document",
        "claim": {"boolq": "Question", "fib": "Summary", "default": "Statement"},
        "format_v2": "Reply with JSON only: {one} or {zero}.",
        "format_v3": "Think step by step, then reply with JSON only: {either}.",
        "format_v3_verdict_first": "Reply with JSON only: {either}.",
        "or": "or",
    },
}


def _answer_format(text: dict, style: PromptStyle) -> str:
    """The instruction's last line, which shows the answer's JSON keys as hakim.prompting.answer defines them."""
    if not style.writes_reasoning:
        template = text["format_v2"]
    else:
        template = text["format_v3"] if style.reasoning_first else text["format_v3_verdict_first"]
    one, zero = LABEL_TOKENS[1], LABEL_TOKENS[0]
    return template.format(one=answer_shape(style, one), zero=answer_shape(style, zero),
                           either=answer_shape(style, f"{one} {text['or']} {zero}"))


def judged_passage(passage: str, claim: str, style: PromptStyle) -> str:
    """The passage as the judge reads it: the style's `passage_sentences` closest to the claim, or all of it.
    The one place a passage is focused; every prompt below is built from what this returns."""
    return focus_passage(passage, claim, style.passage_sentences) if style.passage_sentences is not None else passage


def user_message(passage: str, claim: str, source: str, style: PromptStyle) -> str:
    """The judge's question about one row, as an API judge sends it."""
    return _message(judged_passage(passage, claim, style), claim, source, style)


def _message(read_passage: str, claim: str, source: str, style: PromptStyle) -> str:
    text = INSTRUCTIONS[style.instruction_language]
    task = text.get(source, text["default"])
    claim_name = text["claim"].get(source, text["claim"]["default"])
    claim_line = f"{claim_name}: {claim}\n\n"
    before = claim_line if style.claim_position in ("before", "both") else ""
    after = claim_line if style.claim_position in ("after", "both") else ""
    return f"{task}\n\n{before}{text['passage']}:\n{read_passage}\n\n{after}{_answer_format(text, style)}"


def render_prompt(tokenizer, passage: str, claim: str, source: str, style: PromptStyle) -> str:
    """The full prompt text up to where the judge's answer starts."""
    return _chat(tokenizer, user_message(passage, claim, source, style))


def _chat(tokenizer, message: str) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], add_generation_prompt=True, tokenize=False
        )
    return f"[INST] {message} [/INST]"


IGNORE_INDEX = -100
# part of the tokenized cache's key: raise it whenever encode_example writes other ids for the same row
ENCODING_VERSION = 2  # 2: the answer tokenized whole (_completion_ids)
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


def _prompt_ids(tokenizer, read_passage: str, claim: str, source: str, style: PromptStyle) -> list[int]:
    ids = _ids(tokenizer, _chat(tokenizer, _message(read_passage, claim, source, style)))
    if not getattr(tokenizer, "chat_template", None) and tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    return ids


def _fit_passage(tokenizer, passage: str, claim: str, source: str, style: PromptStyle, reserved: int, max_length: int):
    """Prompt ids whose passage (as the judge reads it) is cut, with a mark, until `reserved` more tokens fit
    in max_length; (ids, truncated), or None if not even the prompt without its passage fits. The cut falls
    on the sentences the judge reads, after focusing."""
    passage = judged_passage(passage, claim, style)
    original_ids = None
    truncated = False
    for _ in range(6):
        prompt = _prompt_ids(tokenizer, passage, claim, source, style)
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


def _completion_ids(tokenizer, before: str, before_ids: list[int], verdict: str, after: str, label_id: int) -> list[int]:
    """The answer's ids as the tokenizer writes the whole answer, when that puts the label token right after
    `before_ids` (the scoring prefix); else the three parts tokenized apart.

    Tokenized alone, the text after the verdict gains a word-start mark on SentencePiece tokenizers: Mistral's
    writes `}` as `▁}`, so a judge would learn to answer `{"jawapan": 1 }` — an answer no text tokenizes to.
    """
    natural = _ids(tokenizer, before + verdict + after)
    if natural[: len(before_ids)] == before_ids and natural[len(before_ids) : len(before_ids) + 1] == [label_id]:
        return natural
    return before_ids + [label_id] + _ids(tokenizer, after)


def encode_example(
    tokenizer, record, style: PromptStyle, max_length: int, label_ids: dict[int, int]
) -> EncodedExample | None:
    """Prompt + target as ids, cutting only the passage when too long; None if even that cannot fit.

    The claim, the reasoning and the verdict are never cut: a judge trained on half a claim learns
    to judge something else.
    """
    before, verdict, after = target_parts(record.label, record.reasoning, style)
    before_ids = _ids(tokenizer, before)
    completion = _completion_ids(tokenizer, before, before_ids, verdict, after, label_ids[record.label])
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
