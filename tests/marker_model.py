"""A real one-layer Mistral whose P(1) is known in advance: high exactly when its context holds one marker token.

Its weights are set by hand, so a test can say what a judge should find and where: every token but the marker
embeds to the same vector; one attention head, asked from any position, attends to the marker wherever it is
(on RoPE's slowest dimension, so distance barely matters) and copies it into the residual stream; the head
reads that. P(1) = sigmoid(about 7.4) ≈ 0.9994 with the marker anywhere in the prompt, sigmoid(-4) ≈ 0.018
without. It goes through the judge's real scoring path (float32 label logits at the verdict position).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import MistralConfig, MistralForCausalLM

from hakim.eval.judge import JUDGE_FILE
from hakim.prompting.style import PromptStyle
from hakim.verdict import label_token_ids

P_WITH_MARKER = 0.9994
P_WITHOUT_MARKER = 0.018
# The story the tests tell with it: a long passage (40 sentences, about 500 tiny-tokenizer tokens) that only
# its last sentence, the one naming Kinabalu (the marker), makes support the claim.
MARKER_WORD = " Kinabalu"
MARKER_MAX_LENGTH = 256  # what the saved judge takes: the filler alone is twice as long
FILLER = " ".join(f"Sungai nombor {number} mengalir ke laut." for number in range(40))
SUPPORT = "Gunung Kinabalu ialah gunung tertinggi di Malaysia."
CLAIM = "adakah gunung tertinggi di malaysia terletak di sabah"


def marker_of(tokenizer) -> int:
    return tokenizer(MARKER_WORD, add_special_tokens=False)["input_ids"][-1]


def marker_reader(tokenizer, marker: int) -> MistralForCausalLM:
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    model = MistralForCausalLM(config).float()
    labels = label_token_ids(tokenizer)
    slowest = config.hidden_size // config.num_attention_heads // 2 - 1  # RoPE turns this query/key dimension least
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()  # the MLP stays zero: the residual stream is the embedding plus the head's copy
        layer = model.model.layers[0]
        for norm in (layer.input_layernorm, layer.post_attention_layernorm, model.model.norm):
            norm.weight.fill_(1.0)
        embedding = model.model.embed_tokens.weight
        embedding[:, 1] = 1.0
        embedding[marker] = 0.0
        embedding[marker, 0] = 1.0
        layer.self_attn.q_proj.weight[slowest, 1] = 5.0  # every position asks (head 0) ...
        layer.self_attn.k_proj.weight[slowest, 0] = 1.0  # ... and only the marker answers, with a score of ~80
        layer.self_attn.v_proj.weight[0, 0] = 1.0
        layer.self_attn.o_proj.weight[2, 0] = 1.0  # the marker, copied into dimension 2
        model.lm_head.weight[labels[1], 2] = 1.0
        model.lm_head.weight[labels[0], 1] = 0.5
    return model.eval()


def save_marker_reader(tokenizer, path: Path) -> Path:
    """The model and tokenizer as an exported judge's directory (v2 style, cut 0.5, MARKER_MAX_LENGTH), for
    judge=model, hakim.cli.judge, serve.py and the probe."""
    marker = marker_of(tokenizer)
    marker_reader(tokenizer, marker).save_pretrained(path)
    tokenizer.save_pretrained(path)
    info = {
        "style": PromptStyle().to_dict(),
        "threshold": 0.5,
        "source_thresholds": {},
        "max_length": MARKER_MAX_LENGTH,
    }
    (path / JUDGE_FILE).write_text(json.dumps(info))
    return path
