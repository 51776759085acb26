"""V2/V3 targets are valid JSON that round-trip; the completion mask and truncation keep the answer."""

import json
from importlib.resources import files

import pytest

from hakim.data.records import JudgeRecord
from hakim.data.sources import SourceSpec, read_source
from hakim.prompting.answer import target_parts, target_text
from hakim.prompting.prompt import (
    IGNORE_INDEX,
    encode_example,
    encode_for_scoring,
    passage_as_read,
    read_user_message,
    render_prompt,
    user_message,
)
from hakim.prompting.style import PromptStyle
from hakim.verdict import label_token_ids, parse_answer

SAMPLE = files("hakim.data") / "sample"


def sample_records():
    records = []
    for name, source in (("boolq_ms.jsonl", "boolq"), ("fib_ms.jsonl", "fib")):
        records.extend(read_source(SourceSpec(source, path=str(SAMPLE / name))).records)
    return records


def test_bundled_sample_is_big_balanced_and_explained():
    records = sample_records()
    assert len(records) >= 120
    for source in ("boolq", "fib"):
        labels = [r.label for r in records if r.source == source]
        assert len(labels) >= 60 and abs(sum(labels) - len(labels) / 2) <= len(labels) * 0.1
    assert all(r.language == "ms" and r.reasoning for r in records)


@pytest.mark.parametrize("style", [PromptStyle("v2"), PromptStyle("v3"), PromptStyle("v3", reasoning_first=False)])
def test_every_sample_row_round_trips_through_its_target(style):
    for record in sample_records():
        text = target_text(record.label, record.reasoning, style)
        json.loads(text)
        parsed = parse_answer(text)
        assert parsed.label == record.label, record.id
        assert parsed.reasoning == (record.reasoning if style.variant == "v3" else None)


def test_reasoning_with_quotes_and_backslashes_stays_valid_json():
    reasoning = 'Petikan berkata "tidak", bukan \\ "ya".\nOleh itu, jawapannya tidak.'
    assert parse_answer(target_text(0, reasoning, PromptStyle("v3"))).reasoning == reasoning


def test_verdict_slot_is_exactly_the_label_token():
    before, verdict, after = target_parts(1, "sebab", PromptStyle("v3"))
    assert verdict == "1" and before.endswith('"jawapan": ') and after == "}"
    assert target_parts(0, None, PromptStyle("v2")) == ('{"jawapan": ', "0", "}")


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("Jawapannya ya.", "not JSON"),
        ('{"jawapan": "1"}', "not 0 or 1"),
        ('{"jawapan": true}', "not 0 or 1"),
        ('{"jawapan": 2}', "not 0 or 1"),
        ('{"penaakulan": "x"}', "no 'jawapan'"),
        ('{"jawapan": 1} tambahan', "text after"),
        ('{"penaakulan": "tidak dieskap "petikan"", "jawapan": 0}', "not JSON"),
    ],
)
def test_parser_refuses_anything_but_a_clean_verdict(answer, reason):
    parsed = parse_answer(answer)
    assert parsed.label is None and reason in parsed.error


def test_prompt_uses_mistral_format_without_chat_template_and_malay_instructions(tiny_tokenizer):
    prompt = render_prompt(tiny_tokenizer, "Dokumen.", "adakah ya", "boolq", PromptStyle("v2"))
    assert prompt.startswith("[INST] ") and prompt.endswith(" [/INST]")
    assert "Jawab 1 jika jawapannya ya" in prompt and "Soalan: adakah ya" in prompt


def test_prompt_uses_the_chat_template_when_the_tokenizer_has_one(tiny_tokenizer):
    tiny_tokenizer.chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>"
    try:
        prompt = render_prompt(tiny_tokenizer, "Dokumen.", "adakah ya", "boolq", PromptStyle("v2"))
    finally:
        tiny_tokenizer.chat_template = None
    assert prompt.startswith("<|user|>") and prompt.endswith("<|assistant|>")


def make_record(passage: str, label: int = 1) -> JudgeRecord:
    return JudgeRecord(
        id="r",
        source="fib",
        language="ms",
        passage=passage,
        claim="Ringkasan penting ini.",
        label=label,
        doc_id="d",
        reasoning='Dokumen menyebut "fakta", oleh itu konsisten.',
    )


@pytest.mark.parametrize("style", [PromptStyle("v2"), PromptStyle("v3")])
def test_completion_mask_covers_only_the_answer(tiny_tokenizer, style):
    label_ids = label_token_ids(tiny_tokenizer)
    encoded = encode_example(tiny_tokenizer, make_record("Dokumen pendek."), style, 512, label_ids)
    assert all(label == IGNORE_INDEX for label in encoded.labels[: encoded.prompt_length])
    completion = encoded.labels[encoded.prompt_length :]
    assert IGNORE_INDEX not in completion and completion == encoded.input_ids[encoded.prompt_length :]
    assert encoded.input_ids[encoded.verdict_index] == label_ids[1]
    assert tiny_tokenizer.decode(completion, skip_special_tokens=True) == target_text(
        1, make_record("x").reasoning, style
    )


def test_truncation_cuts_the_passage_and_keeps_claim_reasoning_and_verdict(tiny_tokenizer):
    label_ids = label_token_ids(tiny_tokenizer)
    record = make_record("Ayat panjang tentang ekonomi negara. " * 200, label=0)
    style = PromptStyle("v3")
    encoded = encode_example(tiny_tokenizer, record, style, 300, label_ids)
    assert encoded.truncated and len(encoded.input_ids) <= 300
    text = tiny_tokenizer.decode(encoded.input_ids, skip_special_tokens=True)
    assert record.claim in text and "…" in text
    assert text.endswith(target_text(0, record.reasoning, style))
    assert encoded.input_ids[encoded.verdict_index] == label_ids[0]


def test_scoring_prompt_ends_where_training_put_the_verdict(tiny_tokenizer):
    label_ids = label_token_ids(tiny_tokenizer)
    record = make_record("Dokumen pendek.")
    encoded = encode_example(tiny_tokenizer, record, PromptStyle("v2"), 512, label_ids)
    scoring_ids, _ = encode_for_scoring(
        tiny_tokenizer, record.passage, record.claim, record.source, PromptStyle("v2"), 512
    )
    assert scoring_ids == encoded.input_ids[: encoded.verdict_index]


def test_too_long_claim_is_refused_not_cut(tiny_tokenizer):
    record = JudgeRecord(id="r", source="fib", language="ms", passage="p", claim="panjang " * 400, label=1, doc_id="d")
    assert encode_example(tiny_tokenizer, record, PromptStyle("v2"), 64, label_token_ids(tiny_tokenizer)) is None


@pytest.mark.parametrize("position, claims_before, claims_after", [("after", 0, 1), ("before", 1, 0), ("both", 1, 1)])
def test_claim_stands_where_the_style_puts_it_and_survives_truncation(
    tiny_tokenizer, position, claims_before, claims_after
):
    style = PromptStyle("v2", claim_position=position)
    record = make_record("Ayat panjang tentang ekonomi negara. " * 200, label=0)
    encoded = encode_example(tiny_tokenizer, record, style, 300, label_token_ids(tiny_tokenizer))
    text = tiny_tokenizer.decode(encoded.input_ids, skip_special_tokens=True)
    head, tail = text.split("Dokumen:", 1)
    assert encoded.truncated and len(encoded.input_ids) <= 300
    assert (head.count(record.claim), tail.count(record.claim)) == (claims_before, claims_after)
    assert encoded.input_ids[encoded.verdict_index] == label_token_ids(tiny_tokenizer)[0]
    with pytest.raises(ValueError, match="claim_position"):
        PromptStyle("v2", claim_position="middle")


@pytest.mark.parametrize("language", ["ms", "en"])
@pytest.mark.parametrize(
    "style", [PromptStyle(), PromptStyle(variant="v3"), PromptStyle(variant="v3", reasoning_first=False)]
)
def test_the_instruction_shows_the_answer_keys_the_schema_defines(monkeypatch, style, language):
    import hakim.prompting.answer as answer
    from hakim.prompting.prompt import user_message

    style = PromptStyle(**{**style.to_dict(), "instruction_language": language})
    monkeypatch.setattr(answer, "VERDICT_KEY", "keputusan")
    monkeypatch.setattr(answer, "REASONING_KEY", "sebab")
    last_line = user_message("Dokumen.", "Soalan?", "boolq", style).splitlines()[-1]
    keys = ['"sebab"', '"keputusan"'] if style.must_generate else ['"keputusan"', '"sebab"']
    shown = [key for key in ('"sebab"', '"keputusan"', '"jawapan"', '"penaakulan"') if key in last_line]
    assert sorted(shown, key=last_line.index) == (keys if style.writes_reasoning else ['"keputusan"'])
    assert last_line.endswith(".") and ("{" in last_line and "}" in last_line)


@pytest.mark.parametrize(
    "style",
    [
        PromptStyle("v2"),
        PromptStyle("v3", "en", claim_position="before"),
        PromptStyle("v3", reasoning_first=False, claim_position="both"),
        PromptStyle("v2", passage_sentences=2),
    ],
)
def test_a_judge_prompt_reads_back_into_its_passage_claim_and_task(style):
    tricky = make_record("Perenggan satu.\n\nRingkasan: bukan ringkasan sebenar.\n\nDokumen:\nJuga bukan.")
    for record in [*sample_records()[::16], tricky]:
        message = user_message(record.passage, record.claim, record.source, style)
        passage, claim, task = read_user_message(message, style)
        assert (claim, task) == (record.claim, record.source)
        # focused once, the passage is what the judge reads, and reading it again gives the same prompt
        assert user_message(passage, claim, task, style) == message
    assert read_user_message(user_message("Teks.", "Kenyataan.", "mytask", style), style)[2] == "default"


def test_a_prompt_in_another_style_or_free_text_is_refused():
    message = user_message("Teks.", "adakah ya", "boolq", PromptStyle("v2"))
    for style in (PromptStyle("v2", "en"), PromptStyle("v3"), PromptStyle("v2", claim_position="before")):
        with pytest.raises(ValueError, match="not a judge prompt in this judge's style"):
            read_user_message(message, style)
    with pytest.raises(ValueError, match="not a judge prompt"):
        read_user_message("Is this claim true? " + message, PromptStyle("v2"))


def test_the_passage_as_read_is_the_cut_one_the_judge_scores(tiny_tokenizer):
    record = make_record("Ayat panjang tentang ekonomi negara. " * 200, label=0)
    style = PromptStyle("v2")
    read = passage_as_read(tiny_tokenizer, record.passage, record.claim, record.source, style, 300)
    assert read.endswith(" …") and record.passage.startswith(read[:-2].rstrip()) and len(read) < len(record.passage)
    scoring_ids, truncated = encode_for_scoring(tiny_tokenizer, record.passage, record.claim, record.source, style, 300)
    assert truncated and tiny_tokenizer.decode(scoring_ids, skip_special_tokens=True).count(read) == 1
    assert passage_as_read(tiny_tokenizer, "Pendek.", record.claim, record.source, style, 300) == "Pendek."
    with pytest.raises(ValueError, match="claim too long"):
        passage_as_read(tiny_tokenizer, "p", "panjang " * 400, "fib", style, 64)
