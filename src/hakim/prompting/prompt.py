"""The judge's prompt and the token ids of prompt + answer, with the completion mask.

Training, validation, evaluation, the probe and the judge API all build inputs through
`encode_example`, `encode_for_scoring` and `encode_for_generation`, so the verdict token sits at the
same place in every one of them. The answer's shape is hakim.prompting.answer's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

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
        "boolq": (
            "Read the passage below and answer the yes/no question from the passage alone. Answer 1 for yes, 0 for no."
        ),
        "fib": (
            "Read the document below and decide whether the summary is factually consistent with it. "
            "Answer 1 if consistent, 0 if not."
        ),
        "default": (
            "Read the document below and decide whether the statement is supported by it. "
            "Answer 1 if supported, 0 if not."
        ),
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
    return template.format(
        one=answer_shape(style, one),
        zero=answer_shape(style, zero),
        either=answer_shape(style, f"{one} {text['or']} {zero}"),
    )


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


def read_user_message(message: str, style: PromptStyle) -> tuple[str, str, str]:
    """(passage, claim, task) out of a `user_message` in `style`, so a server that receives Hakim's prompt
    over the OpenAI API judges its rows as Hakim would. A task without instructions of its own comes back
    as "default" (it was asked as one). A focused passage comes back focused, and focusing it again keeps
    it as it is. Raises ValueError for a message written in another style or not by user_message."""
    text = INSTRUCTIONS[style.instruction_language]
    plain = replace(style, passage_sentences=None)
    passage_head = re.escape(f"{text['passage']}:\n")
    for source in ("boolq", "fib", "default"):
        claim_line = re.escape(f"{text['claim'][source]}: ")
        # The passage may hold anything, the claim is a line or two: in doubt the claim is the shorter part.
        shapes = {
            "after": f"{passage_head}(?P<passage>.*)\n\n{claim_line}(?P<claim>.*)",
            "before": f"{claim_line}(?P<claim>.*?)\n\n{passage_head}(?P<passage>.*)",
            "both": f"{claim_line}(?P<claim>.*?)\n\n{passage_head}(?P<passage>.*)\n\n{claim_line}(?P=claim)",
        }
        pattern = (
            f"{re.escape(text[source])}\n\n{shapes[style.claim_position]}\n\n{re.escape(_answer_format(text, style))}"
        )
        found = re.fullmatch(pattern, message, flags=re.DOTALL)
        if found and user_message(found["passage"], found["claim"], source, plain) == message:
            return found["passage"], found["claim"], source
    raise ValueError(
        f"the message is not a judge prompt in this judge's style ({style.variant}, instructions in "
        f"{style.instruction_language}, claim {style.claim_position} the passage): send the user message "
        "hakim.prompting.prompt.user_message writes in that style (evaluate.py judge=openai with the same style=)"
    )


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
ENCODING_VERSION = 3  # 2: the answer tokenized whole (_completion_ids); 3: no sentence cut after "Dr." or "Sdn. Bhd."
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
    """(prompt ids, truncated, the passage as written into the prompt): the passage as the judge reads it, cut
    with a mark until `reserved` more tokens fit in max_length; None if not even an empty passage leaves room.
    The cut falls on the sentences the judge reads, after focusing."""
    passage = judged_passage(passage, claim, style)
    original_ids = None
    truncated = False
    for _ in range(6):
        prompt = _prompt_ids(tokenizer, passage, claim, source, style)
        overflow = len(prompt) + reserved - max_length
        if overflow <= 0:
            return prompt, truncated, passage
        if original_ids is None:
            original_ids = _ids(tokenizer, passage)
        keep = len(_ids(tokenizer, passage)) - overflow - len(_ids(tokenizer, TRUNCATION_MARK)) - 1
        if keep <= 0:
            return None
        original_ids = original_ids[:keep]
        passage = tokenizer.decode(original_ids).rstrip() + TRUNCATION_MARK
        truncated = True
    return None


def _completion_ids(
    tokenizer, before: str, before_ids: list[int], verdict: str, after: str, label_id: int
) -> list[int]:
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
    prompt, truncated, _ = fitted
    return EncodedExample(
        input_ids=prompt + completion,
        labels=[IGNORE_INDEX] * len(prompt) + completion,
        verdict_index=len(prompt) + len(before_ids),
        prompt_length=len(prompt),
        truncated=truncated,
    )


def _reserved(tokenizer, style: PromptStyle, max_new_tokens: int | None) -> int:
    """Tokens kept free after the prompt: the answer prefix and the verdict (scoring), or the answer (generation)."""
    return len(_ids(tokenizer, scoring_prefix(style))) + 1 if max_new_tokens is None else max_new_tokens


def _fitted_for_judging(tokenizer, passage, claim, source, style, max_length, max_new_tokens):
    fitted = _fit_passage(
        tokenizer, passage, claim, source, style, _reserved(tokenizer, style, max_new_tokens), max_length
    )
    if fitted is not None:
        return fitted
    if max_new_tokens is None:
        raise ValueError(f"claim too long to judge within max_length={max_length}, even without its passage")
    raise ValueError(f"claim too long to judge within max_length={max_length} and {max_new_tokens} new tokens")


def encode_for_scoring(tokenizer, passage: str, claim: str, source: str, style: PromptStyle, max_length: int):
    """Ids of prompt + answer prefix, whose last position predicts the verdict token; (ids, truncated)."""
    prompt, truncated, _ = _fitted_for_judging(tokenizer, passage, claim, source, style, max_length, None)
    return prompt + _ids(tokenizer, scoring_prefix(style)), truncated


def encode_for_generation(
    tokenizer, passage: str, claim: str, source: str, style: PromptStyle, max_length: int, max_new_tokens: int
):
    prompt, truncated, _ = _fitted_for_judging(tokenizer, passage, claim, source, style, max_length, max_new_tokens)
    return prompt, truncated


def passage_as_read(
    tokenizer,
    passage: str,
    claim: str,
    source: str,
    style: PromptStyle,
    max_length: int,
    max_new_tokens: int | None = None,
) -> str:
    """The passage as it stands in the prompt a judge reads: focused (style.passage_sentences) and cut to fit,
    for scoring (max_new_tokens None) or for generating that many tokens. What a person should see beside a verdict."""
    return _fitted_for_judging(tokenizer, passage, claim, source, style, max_length, max_new_tokens)[2]


def passage_fits(
    tokenizer,
    passage: str,
    claim: str,
    source: str,
    style: PromptStyle,
    max_length: int,
    max_new_tokens: int | None = None,
) -> bool:
    """Whether the judge prompt holds `passage` whole within max_length: judging it would cut nothing."""
    prompt = _prompt_ids(tokenizer, judged_passage(passage, claim, style), claim, source, style)
    return len(prompt) + _reserved(tokenizer, style, max_new_tokens) <= max_length


def passage_room(
    tokenizer, claim: str, source: str, style: PromptStyle, max_length: int, max_new_tokens: int | None = None
) -> int:
    """Tokens left for a passage in a prompt about `claim`; raises ValueError, as judging does, when the
    claim does not fit even without a passage."""
    prompt, _, _ = _fitted_for_judging(tokenizer, "", claim, source, style, max_length, max_new_tokens)
    return max_length - _reserved(tokenizer, style, max_new_tokens) - len(prompt)


def token_count(tokenizer, text: str) -> int:
    return len(_ids(tokenizer, text))


def pieces_that_fit(tokenizer, text: str, fits, most: int) -> list[str]:
    """`text` cut at token boundaries into consecutive pieces of at most `most` of its tokens, each the longest
    that `fits`; a piece the text goes on after ends with TRUNCATION_MARK, as a cut passage does. Decoded and
    marked, a piece may tokenize longer than its slice did, hence `fits` on the text itself."""
    ids = _ids(tokenizer, text)

    def piece(start: int, size: int) -> str:
        end = start + size
        return tokenizer.decode(ids[start:end]).strip() + (TRUNCATION_MARK if end < len(ids) else "")

    pieces, start = [], 0
    while start < len(ids):
        size = min(most, len(ids) - start)
        if not fits(piece(start, size)):
            # the longest that fits, by bisection; one token is taken even if it does not (the judge then cuts it)
            low, high = 1, size - 1
            while low < high:
                middle = (low + high + 1) // 2
                low, high = (middle, high) if fits(piece(start, middle)) else (low, middle - 1)
            size = low
        pieces.append(piece(start, size))
        start += size
    return pieces
