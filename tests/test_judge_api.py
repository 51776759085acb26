"""Judge.load(run).judge(...), batch = single, generate mode counts unparsed, export round-trips."""

import json

import pytest
import torch

from hakim.data.dataset_io import read_split
from hakim.export import export_merged
from hakim.judge import Judge
from hakim.judge_cli import main as judge_cli


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


def test_exported_model_judges_like_base_plus_adapter(tiny_run, eval_items, tmp_path):
    out = export_merged(tiny_run, tmp_path / "merged", dtype="float32")
    assert (out / "model.safetensors").exists() and (out / "hakim_judge.json").exists()
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "mistral"
    with_adapter = Judge.load(tiny_run, quantization=None).judge_batch(eval_items)
    merged = Judge.from_pretrained(str(out)).judge_batch(eval_items)
    assert [v.label for v in merged] == [v.label for v in with_adapter]
    assert max(abs(a.probability - b.probability) for a, b in zip(merged, with_adapter)) < 1e-3


def test_cli_judges_a_jsonl_file(tiny_run, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in [
        {"id": "a", "passage": "Sungai Pahang sungai terpanjang di Semenanjung.", "question": "adakah sungai pahang panjang"},
        {"id": "b", "passage": "Hujan lebat melanda Kuantan.", "summary": "Kuantan kering.", "source": "fib"},
    ]) + "\n")
    judge_cli([str(tiny_run), str(source), str(tmp_path / "out.jsonl")])
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and all(r["label"] in (0, 1) for r in rows)


def test_cli_names_the_bad_line(tiny_run, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"passage": "x", "claim": "y"}\n{"passage": "", "claim": "y"}\n')
    with pytest.raises(ValueError, match=r"in.jsonl:2: field 'passage'"):
        judge_cli([str(tiny_run), str(source), str(tmp_path / "out.jsonl")])


def test_evaluate_uses_an_exported_judges_own_prompt_style(tiny_run, workspace, sample_dataset, tmp_path):
    from conftest import compose_config
    from hakim.evaluation import evaluate

    out = export_merged(tiny_run, tmp_path / "merged", dtype="float32")
    cfg = compose_config("evaluate", workspace, tmp_path / "eval", [
        "judge=model", f"model_path={out}", f"dataset_dir={sample_dataset}", "limit=3", "style.variant=v3", "max_length=64"])
    summary = evaluate(cfg)
    assert summary["extra"]["mode"] == "score"  # the run was V2; a V3 reasoning-first style would generate
    assert summary["subsets"]["overall"]["n"] == 3
