"""One PromptStyle, composed once, reaches every judge unchanged: a run, an export, the OpenAI judge, the probe."""

import json

import yaml

from conftest import compose_config
from fake_judge_server import Answer, FakeJudgeServer
from hakim.cli.probe import base_style
from hakim.eval.export import export_merged
from hakim.eval.judge import Judge
from hakim.eval.openai_judge import OpenAIJudge, OpenAISettings
from hakim.prompting.answer import json_schema
from hakim.prompting.prompt import render_prompt, user_message
from hakim.prompting.style import PromptStyle
from hakim.runs.run_dir import RunDir
from hakim.train.fit import train

PASSAGE = "Menara itu tinggi. Ia dibina pada tahun 1990. Pelancong suka melawatnya. Ia terletak di Kuala Lumpur."
CLAIM = "menara itu dibina pada tahun 1990"


def test_one_prompt_style_round_trips_through_a_run_an_export_and_the_openai_judge(
    workspace, tiny_model_dir, sample_dataset, tmp_path
):
    style = PromptStyle("v2", "en", claim_position="both", passage_sentences=2)
    run_dir = tmp_path / "run"
    train(
        compose_config(
            "train",
            workspace,
            run_dir,
            [
                "data.max_length=256",
                "trainer.max_steps=1",
                "lora.r=4",
                "print_config=false",
                "style.instruction_language=en",
                "style.claim_position=both",
                "style.passage_sentences=2",
                "tags=[roundtrip]",
            ],
        )
    )
    assert json.loads((run_dir / "run.json").read_text())["tags"] == ["roundtrip"]

    stored = yaml.safe_load((run_dir / "config.yaml").read_text())["style"]
    assert {key: value for key, value in stored.items() if key != "_target_"} == style.to_dict()
    assert RunDir.open(run_dir).style == style
    local = Judge.load(run_dir)
    assert local.style == style
    exported = export_merged(run_dir, tmp_path / "merged", dtype="float32")
    assert json.loads((exported / "hakim_judge.json").read_text())["style"] == style.to_dict()
    assert Judge.from_pretrained(str(exported)).style == style
    assert base_style(run_dir) == style  # the probe's --style RUN_DIR

    with FakeJudgeServer({"": Answer('{"jawapan": 1}')}, logprobs=False) as server:
        remote = OpenAIJudge(OpenAISettings(model="judge-test", base_url=server.url, use_logprobs=False), local.style)
        assert remote.judge(PASSAGE, CLAIM, "boolq").label == 1
    body = server.bodies[0]
    message = body["messages"][-1]["content"]
    # the remote judge reads the same words the local judge was trained on, and answers in the same schema
    assert message == user_message(PASSAGE, CLAIM, "boolq", style)
    assert message in render_prompt(local.tokenizer, PASSAGE, CLAIM, "boolq", style)
    assert body["response_format"]["json_schema"]["schema"] == json_schema(style)
    assert message.count(CLAIM) == 2 and "Pelancong" not in message  # claim both sides; a focused passage
