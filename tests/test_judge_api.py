"""Judge.load(run).judge(...), batch = single, generate mode counts unparsed, export round-trips."""

import json
import shutil

import pytest
import torch
import yaml

from conftest import always_answer_one
from hakim.cli.judge import main as judge_cli
from hakim.data.dataset_io import read_split
from hakim.eval.export import export_merged
from hakim.eval.judge import Judge
from hakim.verdict import label_pair_logits


@pytest.fixture(scope="module")
def eval_items(sample_dataset):
    return [(r.passage, r.claim, r.source) for r in read_split(sample_dataset, "eval")[:6]]


def test_judge_returns_label_and_probability_consistent_with_threshold(tiny_run):
    verdict = Judge.load(tiny_run).judge("Kuala Lumpur ialah ibu negara Malaysia.", "adakah kl ibu negara", "boolq")
    assert verdict.label in (0, 1) and 0.0 <= verdict.probability <= 1.0
    assert verdict.label == int(verdict.probability >= 0.5) and verdict.parse_error is None


def test_batched_scores_equal_one_at_a_time(tiny_run, eval_items):
    judge = Judge.load(tiny_run, batch_size=4)
    batched = [v.probability for v in judge.judge_batch(eval_items)]
    single = [judge.judge(*item).probability for item in eval_items]
    assert torch.allclose(torch.tensor(batched), torch.tensor(single), atol=1e-4)


def test_generate_mode_reports_unparsed_answers_instead_of_guessing(tiny_run, eval_items):
    judge = Judge.load(tiny_run, max_new_tokens=8)
    verdicts = judge.judge_batch(eval_items[:3], mode="generate")
    for verdict in verdicts:
        assert verdict.raw_output is not None
        if verdict.label is None:
            assert verdict.parse_error and verdict.probability is None
        else:
            assert verdict.parse_error is None


def test_generate_mode_reports_the_verdict_probability_score_mode_gives(tiny_run):
    judge = Judge.load(tiny_run, max_new_tokens=16)
    always_answer_one(judge)
    items = [
        ("Kuala Lumpur ialah ibu negara Malaysia.", "adakah kl ibu negara", "boolq"),
        ("Menara itu siap pada tahun 1998.", "Menara itu siap pada tahun 1998.", "fib"),
        ("Harimau Malaya ialah harimau.", "adakah harimau malaya sejenis kucing", "boolq"),
    ]
    generated = judge.judge_batch(items, mode="generate")
    scored = judge.judge_batch(items, mode="score")
    assert [v.label for v in generated] == [1, 1, 1]
    assert [v.probability for v in generated] == pytest.approx([v.probability for v in scored], abs=1e-5)


def test_exported_model_judges_like_base_plus_adapter(tiny_run, eval_items, tmp_path):
    out = export_merged(tiny_run, tmp_path / "merged", dtype="float32")
    assert (out / "model.safetensors").exists() and (out / "hakim_judge.json").exists()
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "mistral"
    with_adapter = Judge.load(tiny_run, quantization=None).judge_batch(eval_items)
    merged = Judge.from_pretrained(str(out)).judge_batch(eval_items)
    assert [v.label for v in merged] == [v.label for v in with_adapter]
    assert max(abs(a.probability - b.probability) for a, b in zip(merged, with_adapter, strict=True)) < 1e-3


def test_cli_judges_a_jsonl_file(tiny_run, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            json.dumps(row, ensure_ascii=False)
            for row in [
                {
                    "id": "a",
                    "passage": "Sungai Pahang sungai terpanjang di Semenanjung.",
                    "question": "adakah sungai pahang panjang",
                },
                {"id": "b", "passage": "Hujan lebat melanda Kuantan.", "summary": "Kuantan kering.", "source": "fib"},
            ]
        )
        + "\n"
    )
    judge_cli([str(tiny_run), str(source), str(tmp_path / "out.jsonl")])
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and all(r["label"] in (0, 1) for r in rows)


def test_a_run_directory_asking_for_remote_code_is_refused_unless_the_caller_trusts_it(tiny_run, tmp_path, monkeypatch):
    handed = tmp_path / "handed_run"
    shutil.copytree(tiny_run, handed)
    config = yaml.safe_load((handed / "config.yaml").read_text())
    config["model"]["trust_remote_code"] = True
    (handed / "config.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setattr("hakim.eval.judge.load_base_model", lambda *args, **kwargs: pytest.fail("the model was loaded"))
    with pytest.raises(ValueError, match="sets model.trust_remote_code: true"):
        Judge.open(handed)


def test_cli_names_the_bad_line_before_loading_the_model(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setattr(
        Judge, "open", lambda *args, **kwargs: pytest.fail("the model was loaded before the input was read")
    )
    source = tmp_path / "in.jsonl"
    source.write_text('{"passage": "x", "claim": "y"}\n{"passage": "", "claim": "y"}\n')
    with pytest.raises(SystemExit, match=r"^error: .*in.jsonl:2: field 'passage'"):
        judge_cli([str(tiny_run), str(source), str(tmp_path / "out.jsonl")])
    with pytest.raises(SystemExit, match=r"^error: .*missing.jsonl"):
        judge_cli([str(tiny_run), str(tmp_path / "missing.jsonl"), str(tmp_path / "out.jsonl")])


@pytest.mark.parametrize(
    "passage, problem",
    [({"teks": "Sungai."}, "must be text, got a JSON object"), (float("nan"), "must be text, got NaN")],
)
def test_cli_says_what_a_passage_is_when_it_is_not_text(tmp_path, passage, problem):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"passage": passage, "claim": "y"}) + "\n")
    with pytest.raises(SystemExit, match=rf"^error: .*in.jsonl:1: field 'passage': {problem}"):
        judge_cli([str(tmp_path / "no_run"), str(source), str(tmp_path / "out.jsonl")])


def test_evaluate_uses_an_exported_judges_own_prompt_style(tiny_run, workspace, sample_dataset, tmp_path):
    from conftest import compose_config
    from hakim.eval.evaluation import evaluate

    out = export_merged(tiny_run, tmp_path / "merged", dtype="float32")
    cfg = compose_config(
        "evaluate",
        workspace,
        tmp_path / "eval",
        [
            "judge=model",
            f"judge.path={out}",
            f"dataset_dir={sample_dataset}",
            "limit=3",
            "style=v3",
            "judge.max_length=64",
        ],
    )
    summary = evaluate(cfg)
    assert summary["extra"]["mode"] == "score"  # the run was V2; a V3 reasoning-first style would generate
    assert summary["subsets"]["overall"]["n"] == 3


def test_choose_source_thresholds_cuts_each_task_on_its_own_rows():
    from hakim.verdict import choose_source_thresholds

    sources = ["boolq"] * 6 + ["fib"] * 6 + ["only_yes"] * 2
    labels = [1, 1, 1, 1, 0, 0] + [1, 0, 0, 0, 0, 0] + [1, 1]
    # BoolQ scores sit high, FIB scores low: one pooled cut cannot serve both
    probabilities = [0.9, 0.85, 0.8, 0.75, 0.7, 0.65] + [0.3, 0.2, 0.15, 0.1, 0.05, 0.02] + [0.5, 0.6]
    cuts = choose_source_thresholds(sources, labels, probabilities)
    assert set(cuts) == {"boolq", "fib"}  # a source with one class keeps the overall cut
    assert 0.7 < cuts["boolq"] <= 0.75 and 0.2 < cuts["fib"] <= 0.3


def test_a_cut_chosen_on_few_rows_of_a_class_is_flagged():
    from hakim.eval.thresholds import STEADY_CUT_ROWS_PER_CLASS, rows_per_class, thin_cut_warnings

    steady = STEADY_CUT_ROWS_PER_CLASS
    sources = ["boolq"] * (2 * steady) + ["fib"] * (steady + 10)
    labels = [1] * steady + [0] * steady + [1] * 10 + [0] * steady
    class_rows = rows_per_class(sources, labels)
    assert class_rows == {"boolq": {"0": steady, "1": steady}, "fib": {"0": steady, "1": 10}}
    warnings = thin_cut_warnings(class_rows, ["boolq", "fib"])
    assert len(warnings) == 1 and "cut for fib was chosen on 10 validation rows of class 1" in warnings[0]
    # fib without its own cut is judged by the pooled cut, chosen on 40 rows of class 1: steady enough
    assert thin_cut_warnings(class_rows, ["boolq"]) == []
    few = rows_per_class(["boolq"] * 12, [1] * 10 + [0] * 2)
    assert len(thin_cut_warnings(few, [])) == 1 and "the pooled cut" in thin_cut_warnings(few, [])[0]


def test_threshold_on_validation_is_stored_per_source_and_used_by_the_judge(
    tiny_run, workspace, sample_dataset, tmp_path
):
    import shutil

    from conftest import compose_config
    from hakim.eval.evaluation import evaluate

    run_dir = shutil.copytree(tiny_run, tmp_path / "run")  # threshold.json is written into the run
    cfg = compose_config(
        "evaluate", workspace, tmp_path / "eval", [f"judge.run_dir={run_dir}", "threshold=validation", "limit=8"]
    )
    summary = evaluate(cfg)
    stored = json.loads((run_dir / "threshold.json").read_text())
    validation = read_split(sample_dataset, "validation")
    two_class_sources = {
        s for s in {r.source for r in validation} if len({r.label for r in validation if r.source == s}) == 2
    }
    assert set(stored["by_source"]) == two_class_sources and stored["chosen_on"] == "validation"
    assert summary["extra"]["source_thresholds"] == stored["by_source"]
    for source in {r.source for r in validation}:
        assert stored["rows_per_class"][source] == {
            str(label): sum(r.source == source and r.label == label for r in validation) for label in (0, 1)
        }
    # the bundled sample's validation split holds a few rows per source: every cut is flagged, in the report too
    warnings = summary["extra"]["threshold_warnings"]
    assert all(f"cut for {s} " in " ".join(warnings) for s in two_class_sources)
    assert warnings[0] in (tmp_path / "eval" / "report.md").read_text()

    judge = Judge.load(run_dir)
    assert judge.thresholds.by_source == stored["by_source"]
    items = [(r.passage, r.claim, r.source) for r in read_split(sample_dataset, "eval")[:8]]
    for (_, _, source), verdict in zip(items, judge.judge_batch(items), strict=True):
        assert verdict.label == int(verdict.probability >= stored["by_source"].get(source, stored["threshold"]))
    exported = json.loads(
        (export_merged(run_dir, tmp_path / "merged", dtype="float32") / "hakim_judge.json").read_text()
    )
    assert exported["source_thresholds"] == stored["by_source"]


def test_verdict_logits_keep_float32_resolution_under_a_bf16_head():
    torch.manual_seed(0)
    head = torch.nn.Linear(64, 10, bias=True)
    with (
        torch.no_grad()
    ):  # like a judge's: large label logits (~30, rounded by bf16 to steps of 0.125-0.25), small margins
        head.weight[3] = head.weight[3].sign() * 1.0
        head.weight[7] = head.weight[3] + 0.02 * torch.randn(64)
    head = head.to(torch.bfloat16)
    states = (torch.randn(60, 64) * 0.3 + head.weight[3].detach()).to(torch.bfloat16)
    label_ids = {0: 3, 1: 7}
    reference = (states.double() @ head.weight.double().T + head.bias.double())[:, [3, 7]]
    pair = label_pair_logits(states, head, label_ids)
    assert pair.dtype == torch.float32
    torch.testing.assert_close(pair.double(), reference, rtol=1e-5, atol=1e-4)
    margins = pair[:, 1] - pair[:, 0]
    assert len(set(margins.tolist())) == len(states)
    rounded = head(states)[:, [7]].float() - head(states)[:, [3]].float()
    assert len(set(rounded.flatten().tolist())) < len(states) / 3  # what a bf16 head alone gives: ties


def test_a_head_that_is_not_a_plain_linear_is_applied_as_it_is():
    head = torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.Tanh())
    states = torch.randn(4, 8)
    torch.testing.assert_close(label_pair_logits(states, head, {0: 1, 1: 4}), head(states)[:, [1, 4]])
