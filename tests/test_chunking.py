"""Chunked judging: whole sentences packed into chunks, P(1) the maximum over chunks (the minimum over claim
sentences), evidence past max_length found, and nothing changed when chunking is off."""

import json

import pytest

from conftest import always_answer_one
from hakim.data.dataset_io import read_split
from hakim.eval.judge import Judge
from hakim.prompting.chunks import Chunking, chunk_row, claim_sentences
from hakim.prompting.passage_focus import split_sentences
from hakim.prompting.prompt import TRUNCATION_MARK, encode_for_scoring, token_count
from hakim.prompting.style import PromptStyle
from hakim.verdict import Thresholds, Verdict, deciding_cell
from marker_model import (
    CLAIM,
    FILLER,
    MARKER_MAX_LENGTH,
    P_WITH_MARKER,
    P_WITHOUT_MARKER,
    SUPPORT,
    marker_of,
    marker_reader,
)

STYLE = PromptStyle()
MAX_LENGTH = MARKER_MAX_LENGTH  # the filler is about twice as long


@pytest.fixture(scope="module")
def marker_model(tiny_tokenizer):
    marker = marker_of(tiny_tokenizer)
    assert (
        marker not in encode_for_scoring(tiny_tokenizer, FILLER, CLAIM, "boolq", STYLE, 4096)[0]
    )  # only SUPPORT has it
    return marker_reader(tiny_tokenizer, marker)


def judge_of(model, tokenizer, **options) -> Judge:
    return Judge(model, tokenizer, STYLE, max_length=MAX_LENGTH, **options)


@pytest.fixture(scope="module")
def sample_passage(sample_dataset) -> str:
    """Six Malay passages of the sample end to end: numbers like 4,095 and 6.0, names, quotes."""
    passages = list(dict.fromkeys(r.passage for r in read_split(sample_dataset, "train")))
    return " ".join(passages[:6])


def test_chunks_are_whole_consecutive_sentences_packed_up_to_chunk_tokens(tiny_tokenizer, sample_passage):
    claim = "adakah gunung kinabalu di sabah"
    row = chunk_row(tiny_tokenizer, sample_passage, claim, "boolq", STYLE, MAX_LENGTH, Chunking(100))
    sentences = split_sentences(sample_passage)
    assert len(row.chunks) > 5 and not row.cut
    assert [s for chunk in row.chunks for s in split_sentences(chunk.text)] == sentences
    assert all(chunk.text in sample_passage and token_count(tiny_tokenizer, chunk.text) <= 100 for chunk in row.chunks)
    for chunk, following in zip(
        row.chunks, row.chunks[1:], strict=False
    ):  # packed: the next sentence would not have fitted
        assert token_count(tiny_tokenizer, f"{chunk.text} {split_sentences(following.text)[0]}") > 100
    for passage, claim, source in row.items():  # each chunk is read whole beside the claim
        assert not encode_for_scoring(tiny_tokenizer, passage, claim, source, STYLE, MAX_LENGTH)[1]


def test_a_passage_that_fits_one_chunk_is_read_exactly_as_written(tiny_tokenizer):
    passage = "  Baris pertama.\n\nBaris kedua!  "
    row = chunk_row(tiny_tokenizer, passage, CLAIM, "boolq", STYLE, MAX_LENGTH, Chunking(400))
    assert [chunk.text for chunk in row.chunks] == [passage] and row.claims == (CLAIM,)


def test_chunks_shrink_to_what_the_claim_leaves_room_for_and_the_claim_is_never_cut(tiny_tokenizer, sample_passage):
    long_claim = " ".join(["adakah gunung kinabalu ialah gunung tertinggi di malaysia"] * 4)
    row = chunk_row(tiny_tokenizer, sample_passage, long_claim, "boolq", STYLE, MAX_LENGTH, Chunking(400))
    short = chunk_row(tiny_tokenizer, sample_passage, "adakah ia", "boolq", STYLE, MAX_LENGTH, Chunking(400))
    assert row.claims == (long_claim,) and not row.cut and len(row.chunks) > len(short.chunks)
    for passage, claim, source in row.items():
        assert not encode_for_scoring(tiny_tokenizer, passage, claim, source, STYLE, MAX_LENGTH)[1]
    with pytest.raises(ValueError, match="claim too long to judge within max_length=256, even without its passage"):
        chunk_row(tiny_tokenizer, sample_passage, "panjang " * 300, "boolq", STYLE, MAX_LENGTH, Chunking(100))


def test_only_a_sentence_longer_than_a_chunk_is_cut_into_marked_pieces(tiny_tokenizer):
    long_sentence = "Menara itu tinggi " + "sekali " * 150 + "."
    passage = f"Ayat pertama. {long_sentence} Ayat ketiga."
    row = chunk_row(tiny_tokenizer, passage, CLAIM, "boolq", STYLE, MAX_LENGTH, Chunking(60))
    texts = [chunk.text for chunk in row.chunks]
    assert texts[0] == "Ayat pertama." and texts[-1] == "Ayat ketiga." and row.cut
    pieces = row.chunks[1:-1]
    assert len(pieces) > 2 and all(piece.cut for piece in pieces)
    assert all(token_count(tiny_tokenizer, piece.text) <= 60 for piece in pieces)
    assert all(piece.text.endswith(TRUNCATION_MARK) for piece in pieces[:-1]) and pieces[-1].text.endswith("sekali .")
    letters = "".join(piece.text.removesuffix(TRUNCATION_MARK) for piece in pieces).replace(" ", "")
    assert letters == long_sentence.replace(" ", "")  # nothing of the sentence is lost between its pieces


def test_a_claim_is_split_into_sentences_only_when_asked():
    claim = "Gunung itu tertinggi. Ia di Sabah!"
    assert claim_sentences(claim, split=True) == ("Gunung itu tertinggi.", "Ia di Sabah!")
    assert claim_sentences(claim, split=False) == (claim,)
    assert claim_sentences("adakah 6.0 magnitud", split=True) == ("adakah 6.0 magnitud",)


def test_settings_that_cannot_work_are_refused_naming_the_key():
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="chunking.chunk_tokens must be"):
            Chunking(bad)
    with pytest.raises(ValueError, match="chunking.split_claim .* set chunking.chunk_tokens too"):
        Chunking(None, split_claim=True)
    with pytest.raises(ValueError, match=r"unknown chunking keys \['chunk_size'\]"):
        Chunking.from_dict({"chunk_size": 400})


@pytest.mark.parametrize("option, expected", [("truncate", Chunking()), ("sentences", Chunking(400))])
def test_every_chunking_option_composes_and_instantiates(workspace, tmp_path, option, expected):
    from hydra.utils import instantiate

    from conftest import compose_config
    from hakim.eval.judges import chunking_of

    for entry_point in ("evaluate", "serve"):
        cfg = compose_config(entry_point, workspace, tmp_path, [f"chunking={option}"])
        assert instantiate(cfg.chunking) == chunking_of(cfg) == expected


def test_a_judge_that_reads_focused_passages_refuses_chunks(tiny_tokenizer, marker_model):
    with pytest.raises(ValueError, match=r"style.passage_sentences=3 .* \(chunking=truncate\)"):
        Judge(marker_model, tiny_tokenizer, PromptStyle(passage_sentences=3), chunking=Chunking(100))


def score(probability: float, cut: float = 0.5) -> Verdict:
    return Verdict(int(probability >= cut), probability)


def test_the_deciding_cell_is_the_least_supported_sentence_at_its_most_supportive_chunk():
    grid = [
        [score(0.2), score(0.7), score(0.4)],  # sentence 0: best supported by chunk 1
        [score(0.9), score(0.1), score(0.3)],
    ]  # sentence 1: by chunk 0
    assert deciding_cell(grid) == (0, 1)  # min over sentences of max over chunks: 0.7
    grid = [[score(0.45), score(0.2)], [score(0.1), score(0.3)]]  # nothing supported anywhere
    assert deciding_cell(grid) == (1, 1)
    for cut in (0.05, 0.25, 0.35, 0.5, 0.8):  # the cell does not depend on the cut: each verdict's label follows it
        grid = [[score(p, cut) for p in (0.2, 0.7, 0.4)], [score(p, cut) for p in (0.9, 0.1, 0.3)]]
        assert deciding_cell(grid) == (0, 1)


def test_generated_verdicts_decide_by_their_labels_and_an_unparsed_chunk_only_when_nothing_settles_it():
    unparsed = Verdict(None, None, parse_error="not JSON")
    assert deciding_cell([[Verdict(0, 0.4), unparsed, Verdict(1, 0.6)]]) == (0, 2)  # some chunk supports it
    assert deciding_cell([[Verdict(0, 0.4), unparsed, Verdict(0, 0.3)]]) == (0, 1)  # unknown: the row is unparsed
    assert deciding_cell([[Verdict(1, None), Verdict(1, 0.6)]]) == (0, 1)
    # a sentence no chunk supports decides against the claim, whatever another sentence's chunks said
    assert deciding_cell([[unparsed, unparsed], [Verdict(0, 0.2), Verdict(0, 0.1)]]) == (1, 0)
    assert deciding_cell([[unparsed, Verdict(0, 0.3)], [Verdict(1, 0.9), Verdict(0, 0.1)]]) == (0, 0)


def test_evidence_past_max_length_is_found_in_chunks_and_missed_by_truncation(tiny_tokenizer, marker_model):
    passage = f"{FILLER} {SUPPORT}"
    truncated = judge_of(marker_model, tiny_tokenizer).judge(passage, CLAIM, "boolq")
    chunked = judge_of(marker_model, tiny_tokenizer, chunking=Chunking(64)).judge(passage, CLAIM, "boolq")
    assert truncated.truncated and truncated.label == 0
    assert truncated.probability == pytest.approx(P_WITHOUT_MARKER, abs=1e-3)
    assert chunked.label == 1 and chunked.probability == pytest.approx(P_WITH_MARKER, abs=1e-4)
    assert chunked.chunk == chunked.chunk_count - 1 > 2 and chunked.chunk_text == SUPPORT
    assert not chunked.truncated and truncated.chunk is None and truncated.chunk_text is None
    # the combined P(1) is the deciding chunk's own, read from the same float32 label logits
    alone = judge_of(marker_model, tiny_tokenizer).judge(SUPPORT, CLAIM, "boolq")
    assert chunked.probability == alone.probability
    # evidence in the first chunk: the same chunked verdict, decided by chunk 0
    first = judge_of(marker_model, tiny_tokenizer, chunking=Chunking(64)).judge(f"{SUPPORT} {FILLER}", CLAIM, "boolq")
    assert (first.label, first.chunk) == (1, 0) and SUPPORT in first.chunk_text


def test_every_claim_sentence_must_be_supported_somewhere_with_split_claim(tiny_tokenizer, marker_model):
    # The claim's second sentence names Kinabalu, so the marker judge calls it supported beside any chunk;
    # the first sentence only beside a chunk that names it.
    claim = "Gunung itu tertinggi di Malaysia. Kinabalu di Sabah."
    whole = judge_of(marker_model, tiny_tokenizer, chunking=Chunking(64))
    split = judge_of(marker_model, tiny_tokenizer, chunking=Chunking(64, split_claim=True))
    assert whole.judge(FILLER, claim, "fib").label == 1  # the claim as one: the marker is in every prompt
    unsupported = split.judge(FILLER, claim, "fib")
    assert unsupported.label == 0 and unsupported.claim_sentence == 0
    assert unsupported.probability == pytest.approx(P_WITHOUT_MARKER, abs=1e-3)
    supported = split.judge(f"{FILLER} {SUPPORT}", claim, "fib")
    assert supported.label == 1 and supported.probability == pytest.approx(P_WITH_MARKER, abs=1e-4)
    assert whole.judge(FILLER, claim, "fib").claim_sentence is None


def test_the_cut_applies_to_the_combined_probability(tiny_tokenizer, marker_model):
    passage = f"{FILLER} {SUPPORT}"
    strict = Thresholds(0.5, {"boolq": 0.99999})
    judge = judge_of(marker_model, tiny_tokenizer, chunking=Chunking(64), thresholds=strict)
    boolq, fib = judge.judge_batch([(passage, CLAIM, "boolq"), (passage, CLAIM, "fib")])
    assert boolq.probability == fib.probability and (boolq.label, fib.label) == (0, 1)


def test_all_chunks_of_all_rows_go_through_the_model_together(tiny_tokenizer, marker_model):
    judge = judge_of(marker_model, tiny_tokenizer, chunking=Chunking(64), batch_size=8)
    items = [(f"{FILLER} {SUPPORT}", CLAIM, "boolq"), (FILLER, CLAIM, "fib"), (SUPPORT, CLAIM, "boolq")]
    cells = sum(len(chunk_row(tiny_tokenizer, p, c, s, STYLE, MAX_LENGTH, judge.chunking).items()) for p, c, s in items)
    passes = []
    hook = marker_model.get_decoder().register_forward_hook(lambda module, args, output: passes.append(1))
    try:
        verdicts = judge.judge_batch(items)
    finally:
        hook.remove()
    assert [v.label for v in verdicts] == [1, 0, 1] and cells > 20
    assert len(passes) == -(-cells // 8)  # full batches of chunks across rows, not one pass per row or chunk


def test_chunking_off_changes_nothing_and_a_passage_in_one_chunk_scores_as_whole(tiny_run, sample_dataset):
    items = [(r.passage, r.claim, r.source) for r in read_split(sample_dataset, "eval")[:12]]
    today = Judge.load(tiny_run, max_length=640)  # the run's 256 cuts every sample passage of the tiny tokenizer
    assert today.chunking == Chunking() and not today.chunking.enabled
    whole = today.judge_batch(items)
    fitting = [item for item, verdict in zip(items, whole, strict=True) if not verdict.truncated]
    assert len(fitting) > len(items) // 2
    plain = Judge.load(tiny_run, max_length=640).judge_batch(fitting)
    chunked = Judge.load(tiny_run, max_length=640, chunking=Chunking(10_000)).judge_batch(fitting)
    assert [v.probability for v in chunked] == [v.probability for v in plain]  # exactly: the same passes
    assert [v.label for v in chunked] == [v.label for v in plain] and all(v.chunk_count == 1 for v in chunked)
    assert all(v.chunk is None and v.chunk_text is None for v in whole)
    assert len({round(v.probability, 6) for v in plain}) > len(plain) // 2  # a constant would match anything


def test_generate_mode_judges_each_chunk_and_reports_the_probability_score_mode_gives(tiny_run, sample_passage):
    judge = Judge.load(tiny_run, max_new_tokens=16, chunking=Chunking(64))
    always_answer_one(judge)
    items = [
        (sample_passage, "adakah gunung kinabalu di sabah", "boolq"),
        ("Menara itu siap pada 1998.", "Ia siap.", "fib"),
    ]
    generated = judge.judge_batch(items, mode="generate")
    scored = judge.judge_batch(items, mode="score")
    assert [v.label for v in generated] == [1, 1] and generated[0].chunk_count > 3
    assert [v.chunk for v in generated] == [v.chunk for v in scored]
    assert [v.probability for v in generated] == pytest.approx([v.probability for v in scored], abs=1e-5)
    assert generated[0].raw_output is not None and generated[0].chunk_text in sample_passage


# ---------------------------------------------------------------- evaluate.py


def long_rows(path) -> str:
    """Two rows whose support is only in their last sentence, past max_length, and two without any."""
    rows = [
        {"passage": f"{FILLER} {SUPPORT}", "claim": CLAIM, "label": 1, "language": "ms"},
        {"passage": FILLER, "claim": CLAIM, "label": 0, "language": "ms"},
        {"passage": f"{FILLER} Di situ juga. {SUPPORT}", "claim": CLAIM, "label": 1, "language": "ms"},
        {"passage": f"Kinabulu tiada. {FILLER}", "claim": CLAIM, "label": 0, "language": "ms"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def evaluated(workspace, out_dir, marker_dir, rows, *overrides) -> tuple[dict, list[dict]]:
    from conftest import compose_config
    from hakim.eval.evaluation import evaluate

    summary = evaluate(
        compose_config(
            "evaluate", workspace, out_dir, ["judge=model", f"judge.path={marker_dir}", f"rows={rows}", *overrides]
        )
    )
    return summary, [json.loads(line) for line in (out_dir / "predictions.jsonl").read_text().splitlines()]


def test_evaluate_finds_late_evidence_with_chunking_sentences_and_writes_the_deciding_chunk(
    workspace, marker_dir, tmp_path
):
    rows = long_rows(tmp_path / "long.jsonl")
    cut, cut_rows = evaluated(workspace, tmp_path / "truncate", marker_dir, rows)
    chunked, chunked_rows = evaluated(
        workspace, tmp_path / "chunks", marker_dir, rows, "chunking=sentences", "chunking.chunk_tokens=64"
    )
    assert [r["prediction"] for r in cut_rows] == [0, 0, 0, 0] and all(r["passage_truncated"] for r in cut_rows)
    assert all(r["chunk"] is None and r["chunk_text"] is None for r in cut_rows)
    assert [r["prediction"] for r in chunked_rows] == [r["label"] for r in chunked_rows] == [1, 0, 1, 0]
    assert chunked["subsets"]["overall"]["accuracy"] == 1.0 and cut["subsets"]["overall"]["accuracy"] == 0.5
    for row in (chunked_rows[0], chunked_rows[2]):
        assert row["chunk"] == row["chunk_count"] - 1 and row["chunk_text"].endswith(SUPPORT)
        assert row["claim_sentence"] is None and not row["passage_truncated"]
    assert chunked["extra"]["chunking"] == {"chunk_tokens": 64, "split_claim": False}
    assert cut["extra"]["chunking"] == {"chunk_tokens": None, "split_claim": False}


def test_a_judge_that_is_not_a_model_here_refuses_chunking_naming_the_key(workspace, tmp_path):
    from conftest import compose_config
    from hakim.eval.evaluation import evaluate

    for judge, where in (
        ("openai", r"chunk on the server it calls instead \(serve.py chunking=sentences\)"),
        ("always_one", "it never reads the passage"),
    ):
        cfg = compose_config(
            "evaluate",
            workspace,
            tmp_path / judge,
            [f"judge={judge}", f"rows={long_rows(tmp_path / 'rows.jsonl')}", "chunking=sentences"],
        )
        with pytest.raises(ValueError, match=rf"^chunking.chunk_tokens is for a judge whose model runs here .*{where}"):
            evaluate(cfg)


def test_a_cut_chosen_on_validation_cuts_the_chunked_probability(tiny_run, workspace, sample_dataset, tmp_path, caplog):
    import shutil

    from conftest import compose_config
    from hakim.eval.evaluation import evaluate
    from hakim.verdict import choose_thresholds

    run_dir = shutil.copytree(tiny_run, tmp_path / "run")  # threshold.json is written into the run
    chunking = ["chunking=sentences", "chunking.chunk_tokens=128"]
    evaluate(
        compose_config(
            "evaluate",
            workspace,
            tmp_path / "a",
            [f"judge.run_dir={run_dir}", "threshold=validation", "limit=2", *chunking],
        )
    )
    stored = json.loads((run_dir / "threshold.json").read_text())
    records = read_split(sample_dataset, "validation")
    chunked = Judge.load(run_dir, chunking=Chunking(128)).judge_batch([(r.passage, r.claim, r.source) for r in records])
    expected = choose_thresholds(
        [r.source for r in records], [r.label for r in records], [v.probability for v in chunked]
    )
    assert (stored["threshold"], stored["by_source"]) == (expected.overall, expected.by_source)
    assert stored["chunking"] == {"chunk_tokens": 128, "split_claim": False} and all(v.chunk_count > 1 for v in chunked)
    # the stored cut, used by an evaluation that reads passages otherwise, is flagged
    with caplog.at_level("WARNING", logger="hakim.eval.evaluation"):
        evaluate(compose_config("evaluate", workspace, tmp_path / "b", [f"judge.run_dir={run_dir}", "limit=2"]))
    assert "stored cut was chosen with chunking {'chunk_tokens': 128" in caplog.text


def test_the_judge_cli_reads_in_chunks_when_asked(marker_dir, tmp_path, capsys):
    from hakim.cli.judge import main as judge_cli

    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "a", "passage": f"{FILLER} {SUPPORT}", "question": CLAIM}) + "\n")
    judge_cli([str(marker_dir), str(source), str(tmp_path / "cut.jsonl")])
    judge_cli([str(marker_dir), str(source), str(tmp_path / "chunks.jsonl"), "--chunk-tokens", "64"])
    [cut] = [json.loads(line) for line in (tmp_path / "cut.jsonl").read_text().splitlines()]
    [chunked] = [json.loads(line) for line in (tmp_path / "chunks.jsonl").read_text().splitlines()]
    assert cut["label"] == 0 and "chunk" not in cut
    assert chunked["label"] == 1 and chunked["chunk"] == chunked["chunk_count"] - 1 and chunked["chunk_text"] == SUPPORT
    with pytest.raises(SystemExit):
        judge_cli([str(marker_dir), str(source), str(tmp_path / "x.jsonl"), "--split-claim"])
    assert "--split-claim judges each claim sentence against the passage's chunks" in capsys.readouterr().err
