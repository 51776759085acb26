"""A tiny random-weight Mistral with a small BPE tokenizer, built offline for tests and smoke runs.

It has the real Mistral architecture (so the 4-bit, LoRA and training paths are the ones a 7B run
takes) but no chat template, so prompts use the Mistral `[INST] … [/INST]` format.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]


def _training_text() -> list[str]:
    texts = ['{"jawapan": 1} {"jawapan": 0} {"penaakulan": "ya", "jawapan": 0} [INST] [/INST] 0 1']
    sample_dir = resources.files("hakim.data") / "sample"
    for name in ("boolq_ms.jsonl", "fib_ms.jsonl"):
        path = sample_dir / name
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                texts.extend(str(value) for value in json.loads(line).values())
    return texts


def build_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def build_tiny_mistral(
    target: Path, seed: int = 0, vocab_size: int = 1024, hidden_size: int = 64, layers: int = 2, tokenizer=None
) -> Path:
    """Write a random Mistral + tokenizer to `target` once; later calls reuse it. `tokenizer` (a loaded one,
    such as Mistral 7B's own) replaces the small BPE one, and sets the vocabulary size."""
    from transformers import MistralConfig, MistralForCausalLM

    target = Path(target)
    if (target / "config.json").exists() and (target / "tokenizer_config.json").exists():
        return target
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer(vocab_size)
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    # the same weights from every build, drawn from a forked RNG: a run that builds the model on first use has
    # seeded the global one already, and its LoRA init and dropout must draw what they draw when the model is cached
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MistralForCausalLM(config)
    partial = target.with_name(target.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)
    return target
