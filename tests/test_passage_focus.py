"""A focused passage keeps the sentences that share the claim's rare words, and every path sees the same one."""

import pytest
import yaml

from hakim.data.records import JudgeRecord
from hakim.prompting.passage_focus import GAP_MARK, focus_passage, sentence_spans, split_sentences
from hakim.prompting.prompt import encode_example, encode_for_scoring, user_message
from hakim.prompting.style import PromptStyle
from hakim.runs.run_dir import RunDir
from hakim.verdict import label_token_ids

PASSAGE = (
    "Kuala Lumpur ialah ibu negara Malaysia. "
    "Bandar itu terkenal dengan Menara Berkembar Petronas. "
    "Menara itu siap dibina pada tahun 1998. "
    "Pelancong datang dari seluruh dunia. "
    "Ramai yang menaiki jambatan langit menara itu."
)


def test_sentences_split_after_end_marks_only():
    assert split_sentences("Satu. Dua? Tiga! Empat 3.5 peratus") == ["Satu.", "Dua?", "Tiga!", "Empat 3.5 peratus"]
    assert split_sentences("  ") == []


def test_titles_company_suffixes_and_initials_stay_inside_their_sentence():
    text = (
        "Menurut Dr. Aminah, Syarikat Maju Sdn. Bhd. berkata keuntungan naik. Pasukan S.W.A.T. tiba di Jln. "
        "Ampang pada 3 Jan. 2020. Harga 3.5 peratus. Ia naik! lalu turun."
    )
    assert split_sentences(text) == [
        "Menurut Dr. Aminah, Syarikat Maju Sdn. Bhd. berkata keuntungan naik.",
        "Pasukan S.W.A.T. tiba di Jln. Ampang pada 3 Jan. 2020.",
        "Harga 3.5 peratus.",
        "Ia naik! lalu turun.",
    ]


def test_sentence_spans_are_the_sentences_in_place_with_only_whitespace_between():
    text = "  Gunung Kinabalu setinggi 4,095 meter.\nIa di Sabah!  Bila didaki?\tPada 2015, gempa 6.0 magnitud.  "
    spans = sentence_spans(text)
    assert (
        [text[start:end] for start, end in spans]
        == split_sentences(text)
        == ["Gunung Kinabalu setinggi 4,095 meter.", "Ia di Sabah!", "Bila didaki?", "Pada 2015, gempa 6.0 magnitud."]
    )
    gaps = (
        [text[: spans[0][0]]]
        + [text[a[1] : b[0]] for a, b in zip(spans, spans[1:], strict=False)]
        + [text[spans[-1][1] :]]
    )
    assert all(not gap.strip() for gap in gaps)


def test_keeps_the_sentences_sharing_the_claims_words_in_passage_order_and_marks_gaps():
    focused = focus_passage(PASSAGE, "adakah menara petronas siap pada tahun 1998", 2)
    assert focused == (
        f"{GAP_MARK} Bandar itu terkenal dengan Menara Berkembar Petronas. "
        f"Menara itu siap dibina pada tahun 1998. {GAP_MARK}"
    )


def test_words_in_every_sentence_do_not_decide():
    # "itu" and "menara" are in three sentences; "pelancong" in one: the rare shared word wins
    focused = focus_passage(PASSAGE, "adakah menara itu dikunjungi pelancong", 1)
    assert focused == f"{GAP_MARK} Pelancong datang dari seluruh dunia. {GAP_MARK}"


def test_short_passages_stay_whole_and_focusing_twice_changes_nothing():
    assert focus_passage("Satu ayat sahaja.", "ayat", 3) == "Satu ayat sahaja."
    once = focus_passage(PASSAGE, "menara petronas 1998", 2)
    assert focus_passage(once, "menara petronas 1998", 2) == once


def test_no_shared_word_keeps_the_opening_sentences():
    assert focus_passage(PASSAGE, "zzz", 1) == f"Kuala Lumpur ialah ibu negara Malaysia. {GAP_MARK}"


def test_zero_sentences_is_refused():
    with pytest.raises(ValueError, match="passage_sentences"):
        PromptStyle("v2", passage_sentences=0)
    with pytest.raises(ValueError, match="passage_sentences"):
        focus_passage(PASSAGE, "menara", 0)


def test_training_and_scoring_read_the_same_focused_passage(tiny_tokenizer):
    style = PromptStyle("v2", passage_sentences=1)
    record = JudgeRecord(
        id="r",
        source="boolq",
        language="ms",
        passage=PASSAGE,
        claim="adakah menara itu dikunjungi pelancong",
        label=1,
        doc_id="d",
    )
    encoded = encode_example(tiny_tokenizer, record, style, 512, label_token_ids(tiny_tokenizer))
    scoring_ids, truncated = encode_for_scoring(tiny_tokenizer, record.passage, record.claim, record.source, style, 512)
    assert scoring_ids == encoded.input_ids[: encoded.verdict_index] and not truncated
    text = tiny_tokenizer.decode(encoded.input_ids, skip_special_tokens=True)
    assert "Pelancong datang" in text and "Kuala Lumpur" not in text
    whole = encode_example(tiny_tokenizer, record, PromptStyle("v2"), 512, label_token_ids(tiny_tokenizer))
    assert len(encoded.input_ids) < len(whole.input_ids)
    assert "Pelancong datang" in user_message(record.passage, record.claim, "boolq", style)


def test_a_long_focused_passage_is_cut_within_the_kept_sentences(tiny_tokenizer):
    long_sentence = "Menara itu tinggi " + "sekali " * 300 + "."
    passage = f"Ayat pertama. {long_sentence} Ayat ketiga tentang pelancong."
    style = PromptStyle("v2", passage_sentences=1)
    record = JudgeRecord(
        id="r", source="boolq", language="ms", passage=passage, claim="menara tinggi", label=0, doc_id="d"
    )
    encoded = encode_example(tiny_tokenizer, record, style, 200, label_token_ids(tiny_tokenizer))
    text = tiny_tokenizer.decode(encoded.input_ids, skip_special_tokens=True)
    assert encoded.truncated and len(encoded.input_ids) <= 200
    assert "Menara itu tinggi" in text and "Ayat pertama" not in text and "pelancong" not in text


def test_runs_keep_their_focus_and_older_runs_read_whole_passages(tmp_path):
    """Runs made before the `style` group stored `variant: {variant: v2, ...}`, before passage_sentences existed."""
    older = {"variant": {"variant": "v2", "instruction_language": "ms", "reasoning_first": True}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(older))
    assert RunDir.open(tmp_path).style.passage_sentences is None
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"style": {**older["variant"], "passage_sentences": 3}}))
    assert RunDir.open(tmp_path).style.passage_sentences == 3
