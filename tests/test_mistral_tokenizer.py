"""The 7B path on Mistral's real SentencePiece tokenizer: label ids, the verdict position, truncation,
padding without a pad token, and generate-then-parse, on a tiny random 4-bit Mistral with that tokenizer.

The tiny BPE tokenizer of the other tests writes a space as its own byte token; Mistral's writes a word-start
mark `▁` that merges with what follows and is added at the start of any text tokenized alone.
"""

import pytest
import torch

from hakim.eval.judge import Judge
from hakim.models.loading import ModelSpec, load_base_model, load_tokenizer
from hakim.models.tiny_mistral import build_tiny_mistral
from hakim.prompting.prompt import TRUNCATION_MARK, encode_example, encode_for_generation, encode_for_scoring
from hakim.prompting.style import PromptStyle
from hakim.train.datamodule import collate
from hakim.train.judge_module import completion_cross_entropy
from hakim.verdict import label_token_ids

PASSAGE = (
    "Kuala Lumpur ialah ibu negara Malaysia. Putrajaya pula menjadi pusat pentadbiran kerajaan persekutuan "
    "sejak tahun 1999, manakala Parlimen masih bersidang di Kuala Lumpur."
)
CLAIM = "Adakah Kuala Lumpur ibu negara Malaysia?"
STYLES = {
    "v2": PromptStyle(),
    "v3 verdict first": PromptStyle(variant="v3", reasoning_first=False),
    "v3 reasoning first": PromptStyle(variant="v3", reasoning_first=True),
}


def record(label=1, passage=PASSAGE, claim=CLAIM, reasoning="Petikan menyatakannya dengan jelas."):
    from hakim.data.records import JudgeRecord

    return JudgeRecord(
        id="r",
        source="boolq",
        language="ms",
        passage=passage,
        claim=claim,
        label=label,
        doc_id="d",
        reasoning=reasoning,
    )


@pytest.fixture(scope="module")
def tokenizer(mistral_tokenizer_dir):
    return load_tokenizer(str(mistral_tokenizer_dir))


@pytest.fixture(scope="module")
def tiny_4bit_mistral(mistral_tokenizer_dir, tokenizer, tmp_path_factory):
    from transformers import AutoTokenizer

    directory = build_tiny_mistral(
        tmp_path_factory.mktemp("tiny") / "tiny_mistral_spm",
        tokenizer=AutoTokenizer.from_pretrained(mistral_tokenizer_dir),
    )
    return load_base_model(ModelSpec(name="tiny_mistral_spm", source="local", path=str(directory)))


def test_the_real_tokenizer_has_32000_pieces_no_pad_token_and_one_piece_per_label(mistral_tokenizer_dir, tokenizer):
    from transformers import AutoTokenizer

    assert len(tokenizer) == 32000
    assert AutoTokenizer.from_pretrained(mistral_tokenizer_dir).pad_token is None
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == 2  # load_tokenizer pads with </s>
    label_ids = label_token_ids(tokenizer)
    assert label_ids == {1: 28740, 0: 28734}
    assert tokenizer.convert_ids_to_tokens([label_ids[1], label_ids[0]]) == ["1", "0"]


@pytest.mark.parametrize("label", [0, 1])
@pytest.mark.parametrize("style_name", sorted(STYLES))
def test_the_training_target_is_the_answer_as_the_tokenizer_writes_it(tokenizer, style_name, label):
    style = STYLES[style_name]
    example = encode_example(tokenizer, record(label), style, 512, label_token_ids(tokenizer))
    natural = tokenizer(tokenizer.decode(example.input_ids[1:-1]), add_special_tokens=False)["input_ids"]
    assert example.input_ids == [tokenizer.bos_token_id, *natural, tokenizer.eos_token_id]
    assert example.input_ids[example.verdict_index] == label_token_ids(tokenizer)[label]
    pieces = tokenizer.convert_ids_to_tokens(example.input_ids)
    assert pieces[example.verdict_index - 2 : example.verdict_index] == ['":', "▁"]  # `": 1}` is `":`, `▁`, `1`, `}`
    assert "▁}" not in pieces[example.verdict_index :]  # the answer's own `}`, not a word-start one
    assert example.labels[: example.prompt_length] == [-100] * example.prompt_length
    assert example.labels[example.prompt_length :] == example.input_ids[example.prompt_length :]
    if style_name == "v2":
        assert pieces[example.verdict_index - 6 :] == ['▁{"', "j", "aw", "apan", '":', "▁", str(label), "}", "</s>"]
    if not style.must_generate:  # scoring reads the verdict where training taught it
        scored, truncated = encode_for_scoring(tokenizer, PASSAGE, CLAIM, "boolq", style, 512)
        assert scored == example.input_ids[: example.verdict_index] and not truncated


@pytest.mark.parametrize("max_length", [200, 256, 320])
def test_truncation_cuts_the_passage_never_the_claim(tokenizer, max_length):
    long_passage = " ".join([PASSAGE] * 12)
    example = encode_example(
        tokenizer, record(passage=long_passage), STYLES["v2"], max_length, label_token_ids(tokenizer)
    )
    assert example.truncated and len(example.input_ids) <= max_length
    prompt = tokenizer.decode(example.input_ids[: example.prompt_length])
    assert CLAIM in prompt and TRUNCATION_MARK.strip() in prompt
    scored, truncated = encode_for_scoring(tokenizer, long_passage, CLAIM, "boolq", STYLES["v2"], max_length)
    assert truncated and len(scored) <= max_length and CLAIM in tokenizer.decode(scored)
    generated, _ = encode_for_generation(tokenizer, long_passage, CLAIM, "boolq", STYLES["v2"], max_length, 16)
    assert len(generated) + 16 <= max_length and CLAIM in tokenizer.decode(generated)


def test_padding_with_the_eos_token_changes_no_loss(tokenizer, tiny_4bit_mistral):
    """Padding is </s>, which is also every answer's last label: it must be masked as padding, kept as a label."""
    label_ids = label_token_ids(tokenizer)
    examples = [
        encode_example(tokenizer, record(1, passage=p), STYLES["v2"], 512, label_ids) for p in (PASSAGE, PASSAGE[:40])
    ]
    items = [
        {
            "input_ids": e.input_ids,
            "labels": e.labels,
            "verdict_index": e.verdict_index,
            "label": 1,
            "id": str(i),
            "source": "boolq",
        }
        for i, e in enumerate(examples)
    ]
    batch = collate(items, tokenizer.pad_token_id)
    short = int(batch["attention_mask"][1].sum())
    assert short == len(examples[1].input_ids) < batch["input_ids"].size(1)
    assert (batch["input_ids"][1, short:] == tokenizer.eos_token_id).all()
    assert (batch["labels"][1, short:] == -100).all() and batch["labels"][1, short - 1] == tokenizer.eos_token_id
    decoder, head = tiny_4bit_mistral.get_decoder(), tiny_4bit_mistral.get_output_embeddings()
    with torch.no_grad():
        hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        batched, count = completion_cross_entropy(hidden, batch["labels"], head)
        one_by_one = []
        for example in examples:
            ids = torch.tensor([example.input_ids])
            alone = decoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            one_by_one.append(completion_cross_entropy(alone, torch.tensor([example.labels]), head))
    assert count == sum(n for _, n in one_by_one)
    expected = sum(loss * n for loss, n in one_by_one) / count
    assert batched.item() == pytest.approx(expected.item(), abs=1e-5)


class ScriptedAnswer:
    """Makes the model's greedy choice, step by step, the given token ids (a forward hook on its head): what
    generate, the decoder, the parser and the re-scoring then do with them is the judge's own."""

    def __init__(self, model, answer_ids: list[int]):
        self.answer_ids, self.step = answer_ids, 0
        self.handle = model.get_output_embeddings().register_forward_hook(self._choose)

    def _choose(self, module, inputs, logits):
        forced = torch.full_like(logits[:, -1], -1e4)
        forced[:, self.answer_ids[min(self.step, len(self.answer_ids) - 1)]] = 0.0
        self.step += 1
        logits = logits.clone()
        logits[:, -1] = forced
        return logits


def test_generate_then_parse_reads_the_natural_answer_and_scores_it_as_score_mode_does(tokenizer, tiny_4bit_mistral):
    judge = Judge(tiny_4bit_mistral, tokenizer, STYLES["v2"], max_length=512, max_new_tokens=16)
    answer = tokenizer('{"jawapan": 1}', add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    script = ScriptedAnswer(tiny_4bit_mistral, answer)
    try:
        generated = judge.judge(PASSAGE, CLAIM, "boolq", mode="generate")
    finally:
        script.handle.remove()
    assert script.step == len(answer)  # it stopped at </s>
    assert generated.raw_output == '{"jawapan": 1}' and generated.label == 1 and generated.parse_error is None
    scored = judge.judge(PASSAGE, CLAIM, "boolq", mode="score")
    assert generated.probability == pytest.approx(scored.probability, abs=1e-6)


def test_an_answer_that_is_not_json_is_unparsed_never_a_class(tokenizer, tiny_4bit_mistral):
    judge = Judge(tiny_4bit_mistral, tokenizer, STYLES["v2"], max_length=512, max_new_tokens=8)
    script = ScriptedAnswer(
        tiny_4bit_mistral, tokenizer("Ya, betul.", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    )
    try:
        verdict = judge.judge(PASSAGE, CLAIM, "boolq", mode="generate")
    finally:
        script.handle.remove()
    assert verdict.raw_output == "Ya, betul." and verdict.label is None and verdict.probability is None
    assert verdict.parse_error
