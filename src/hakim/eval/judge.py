"""The judge API: `Judge.load(run_dir).judge(passage, claim)` → label, P(consistent), reasoning.

Two ways to reach a verdict:
- score: one forward pass over prompt + answer prefix; P(1) from the two label-token logits.
  Never unparsed. Works for V2 and verdict-first V3.
- generate: greedy generation of the whole answer, read by the strict parser; an answer that does
  not parse is reported as unparsed (label None), never mapped to a class. Needed for
  reasoning-first V3.

With `chunking` (hakim.prompting.chunks) a long passage is read as chunks in either mode: every chunk of
every row is judged in one judge_batch pass, and each row's verdict is that of the chunk that decided.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from hakim.batching import length_sorted_batches, pad_with_mask
from hakim.models.loading import ModelSpec, backbone_and_head, load_adapter, load_base_model, load_tokenizer
from hakim.prompting.answer import precedes_verdict
from hakim.prompting.chunks import Chunking, chunk_row
from hakim.prompting.prompt import encode_for_generation, encode_for_scoring, passage_as_read
from hakim.prompting.style import PromptStyle
from hakim.runs.run_dir import RunDir
from hakim.verdict import (
    ParsedAnswer,
    Thresholds,
    Verdict,
    deciding_cell,
    label_token_ids,
    parse_answer,
    probability_at,
)

# beside an exported (merged) model: the prompt style, thresholds and max length it was trained with
JUDGE_FILE = "hakim_judge.json"


class Judge:
    modes = ("score", "generate")

    def __init__(
        self,
        model,
        tokenizer,
        style: PromptStyle,
        thresholds: Thresholds = Thresholds(),
        max_length: int = 1024,
        batch_size: int = 8,
        max_new_tokens: int = 384,
        name: str = "judge",
        chunking: Chunking = Chunking(),
    ):
        chunking.check_style(style)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.style = style
        self.thresholds = thresholds
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.name = name
        self.chunking = chunking
        self.label_ids = label_token_ids(tokenizer)

    @property
    def default_mode(self) -> str:
        return "generate" if self.style.must_generate else "score"

    @classmethod
    def load(
        cls,
        run_dir: str | Path | RunDir,
        quantization: str | None = "as_trained",
        trust_remote_code: bool = False,
        **overrides,
    ) -> Judge:
        """Base model (quantized as in training, unless `quantization` says otherwise) + the run's
        adapter, with the run's prompt style and stored thresholds. A run trained with
        model.trust_remote_code needs `trust_remote_code=True` here too: a run directory can be handed to you."""
        run = run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir, trained=True)
        spec = run.model_spec
        if spec.trust_remote_code and not trust_remote_code:
            raise ValueError(
                f"{run.config_path} sets model.trust_remote_code: true, which runs code shipped with the model; "
                "pass trust_remote_code=True only if you trust this run directory and its model"
            )
        if quantization != "as_trained":
            spec = replace(spec, quantization=quantization)
        model = load_adapter(load_base_model(spec), run.adapter_dir)
        options = {"thresholds": run.thresholds(), "max_length": run.max_length, "name": run.name, **overrides}
        return cls(model, load_tokenizer(str(run.adapter_dir)), run.style, **options)

    @classmethod
    def from_pretrained(
        cls,
        path: str,
        style: PromptStyle | None = None,
        quantization: str | None = None,
        compute_dtype: str = "auto",
        **options,
    ) -> Judge:
        """A merged Hakim model (its hakim_judge.json gives style and threshold) or any causal LM zero-shot."""
        info_path = Path(path) / JUDGE_FILE
        if info_path.exists():
            info = json.loads(info_path.read_text())
            style = style or PromptStyle.from_dict(info["style"])
            thresholds = Thresholds(info["threshold"], info.get("source_thresholds") or {})
            options = {"thresholds": thresholds, "max_length": info["max_length"], **options}
        if style is None:
            raise ValueError(f"{path} has no {JUDGE_FILE}: pass the PromptStyle the model should be prompted with")
        spec = ModelSpec(
            name=Path(path).name,
            source="local" if Path(path).exists() else "hub",
            path=path,
            quantization=quantization,
            compute_dtype=compute_dtype,
        )
        return cls(load_base_model(spec), load_tokenizer(path), style, name=options.pop("name", spec.name), **options)

    @classmethod
    def open(cls, path: str | Path, **options) -> Judge:
        """A training run directory or an exported model directory, whichever `path` is."""
        try:
            run = RunDir.open(path, trained=True)
        except FileNotFoundError:
            return cls.from_pretrained(str(path), **options)
        return cls.load(run, **options)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def judge(self, passage: str, claim: str, source: str = "default", mode: str | None = None) -> Verdict:
        return self.judge_batch([(passage, claim, source)], mode=mode)[0]

    def judge_batch(self, items: list[tuple[str, str, str]], mode: str | None = None) -> list[Verdict]:
        mode = mode or self.default_mode
        if mode not in self.modes:
            raise ValueError(f"mode must be one of {self.modes}, got {mode!r}")
        return self._chunked(items, mode) if self.chunking.enabled else self._whole(items, mode)

    def _whole(self, items, mode: str) -> list[Verdict]:
        return self._score(items) if mode == "score" else self._generate(items)

    def _chunked(self, items, mode: str) -> list[Verdict]:
        """Every chunk × claim sentence of every row judged together, then each row's deciding cell."""
        new_tokens = self.max_new_tokens if mode == "generate" else None
        rows = [
            chunk_row(self.tokenizer, passage, claim, source, self.style, self.max_length, self.chunking, new_tokens)
            for passage, claim, source in items
        ]
        cells = self._whole([item for row in rows for item in row.items()], mode)
        verdicts, start = [], 0
        for row in rows:
            size = len(row.claims) * len(row.chunks)
            grid = row.grid(cells[start : start + size])
            start += size
            sentence, chunk = deciding_cell(grid)
            read = passage_as_read(
                self.tokenizer,
                row.chunks[chunk].text,
                row.claims[sentence],
                row.source,
                self.style,
                self.max_length,
                new_tokens,
            )
            cut = row.cut or any(verdict.truncated for line in grid for verdict in line)
            verdicts.append(
                replace(
                    grid[sentence][chunk],
                    truncated=cut,
                    chunk=chunk,
                    chunk_count=len(row.chunks),
                    chunk_text=read,
                    claim_sentence=sentence if len(row.claims) > 1 else None,
                )
            )
        return verdicts

    def passage_as_read(self, passage: str, claim: str, source: str = "default", mode: str | None = None) -> str:
        """The passage as this judge reads it in one pass in `mode`: focused and cut as judge_batch would without
        chunking (a chunked verdict carries the chunk that decided as it was read: Verdict.chunk_text)."""
        generating = (mode or self.default_mode) == "generate"
        return passage_as_read(
            self.tokenizer,
            passage,
            claim,
            source,
            self.style,
            self.max_length,
            self.max_new_tokens if generating else None,
        )

    def _padded(self, sequences: list[list[int]], left: bool):
        input_ids, attention = pad_with_mask(sequences, self.tokenizer.pad_token_id, left)
        return input_ids.to(self.device), attention.to(self.device)

    @torch.no_grad()
    def probabilities(self, items: list[tuple[str, str, str]]) -> tuple[list[float], list[bool]]:
        encoded = [encode_for_scoring(self.tokenizer, p, c, s, self.style, self.max_length) for p, c, s in items]
        return self._next_token_probabilities([ids for ids, _ in encoded]), [truncated for _, truncated in encoded]

    def _next_token_probabilities(self, sequences: list[list[int]]) -> list[float]:
        """P(1) for the token after each sequence, from float32 label logits (one forward pass per batch)."""
        result = [0.0] * len(sequences)
        backbone, head = backbone_and_head(self.model)
        for batch in length_sorted_batches([len(s) for s in sequences], self.batch_size):
            input_ids, attention = self._padded([sequences[i] for i in batch], left=False)
            hidden = backbone(input_ids=input_ids, attention_mask=attention).last_hidden_state
            probability, _ = probability_at(hidden, attention.sum(dim=1) - 1, head, self.label_ids)
            for index, value in zip(batch, probability.tolist(), strict=True):
                result[index] = value
        return result

    def _score(self, items) -> list[Verdict]:
        probabilities, truncated = self.probabilities(items)
        return [
            Verdict(self.thresholds.label(p, source), p, truncated=t)
            for (_, _, source), p, t in zip(items, probabilities, truncated, strict=True)
        ]

    @torch.no_grad()
    def _generate(self, items) -> list[Verdict]:
        encoded = [
            encode_for_generation(self.tokenizer, p, c, s, self.style, self.max_length, self.max_new_tokens)
            for p, c, s in items
        ]
        sequences = [ids for ids, _ in encoded]
        answers: list[tuple[list[int], str, ParsedAnswer] | None] = [None] * len(items)
        for batch in length_sorted_batches([len(s) for s in sequences], self.batch_size):
            input_ids, attention = self._padded([sequences[i] for i in batch], left=True)
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            for row, index in enumerate(batch):
                tokens = output[row, input_ids.size(1) :].tolist()
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                answers[index] = (tokens, text, parse_answer(text))
        # P(1) where the answer wrote its verdict, scored again in float32 over prompt + answer so far:
        # generate's own scores come from the model's dtype (bf16 rounds them to a dozen values).
        verdict_at = {
            index: self._verdict_position(tokens)
            for index, (tokens, _, parsed) in enumerate(answers)
            if parsed.label is not None
        }
        scored = [index for index, position in verdict_at.items() if position is not None]
        probabilities = dict(
            zip(
                scored,
                self._next_token_probabilities(
                    [sequences[index] + answers[index][0][: verdict_at[index]] for index in scored]
                ),
                strict=True,
            )
        )
        return [
            Verdict(parsed.label, probabilities.get(index), parsed.reasoning, text, parsed.error, encoded[index][1])
            for index, (_, text, parsed) in enumerate(answers)
        ]

    def _verdict_position(self, tokens: list[int]) -> int | None:
        """Index of the generated label token that is the verdict (the last one after the verdict key)."""
        for position in range(len(tokens) - 1, -1, -1):
            if tokens[position] in self.label_ids.values():
                before = self.tokenizer.decode(tokens[:position], skip_special_tokens=True)
                if precedes_verdict(before):
                    return position
        return None
