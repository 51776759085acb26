"""What a run directory records: an untracked config file counts as a change; secret-looking keys never
keep their value; ordinary keys that merely contain a marker word keep theirs."""

import subprocess

from hakim.provenance import git_state, is_secret_key, literal_secrets, redact, redact_overrides


def test_an_untracked_config_file_makes_the_state_dirty_and_is_copied_into_the_diff(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "start"],
        cwd=tmp_path,
        check=True,
    )
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "conf" / "local").mkdir(parents=True)
    (tmp_path / "conf" / "local" / "default.yaml").write_text("data:\n  batch_size: 2\n")
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-not-copied\n")

    state = git_state(tmp_path)
    assert state["dirty"] is True and set(state["untracked"]) == {"conf/local/default.yaml", ".env"}
    assert "+++ b/conf/local/default.yaml" in state["diff"] and "+  batch_size: 2" in state["diff"]
    assert "sk-not-copied" not in state["diff"]


def test_secret_keys_are_redacted_and_token_counts_are_not():
    assert all(
        is_secret_key(key)
        for key in ("api_key", "openai_api_key", "hf_token", "token", "password", "secret", "Authorization")
    )
    assert not any(is_secret_key(key) for key in ("max_new_tokens", "tokens_per_minute", "api_key_env", "monkey"))
    config = {"teacher": {"api_key": "sk-1", "api_key_env": "OPENAI_API_KEY", "tokens_per_minute": 100}}
    assert redact(config) == {
        "teacher": {"api_key": "<redacted>", "api_key_env": "OPENAI_API_KEY", "tokens_per_minute": 100}
    }
    assert redact_overrides(["+openai.api_key=sk-1", "lora.r=8", "evaluate.max_new_tokens=9"]) == [
        "+openai.api_key=<redacted>",
        "lora.r=8",
        "evaluate.max_new_tokens=9",
    ]


def test_variable_names_and_plain_urls_are_not_taken_for_pasted_keys():
    config = {
        "teacher": {"api_key_env": "OPENAI_API_KEY", "base_url": "http://localhost:8000/v1"},
        "judge": {"api_key_env": "my_project_key_2024", "base_url": "${oc.env:JUDGE_URL}"},
        "corpus": {"path": "hf://datasets/mesolitica/boolq@main/train.parquet"},
        "hf_token_env": "HF_TOKEN",
    }
    assert literal_secrets(config) == []
    pasted = {
        "a_env": "sk-proj-abc",
        "b_env": "hf_AbCdEfGh1234567890abcdefgh",
        "c": {"url": "https://user:pw@host/v1"},
        "headers": {"Authorization": "Bearer x"},
        "hosts": ["http://a-token@host"],
    }
    assert literal_secrets(pasted) == ["a_env", "b_env", "c.url", "headers.Authorization", "hosts.0"]
