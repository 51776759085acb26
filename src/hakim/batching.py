"""Batches of token sequences: grouped by length (little padding) and padded into tensors, the same way
for training, evaluation, the judge and the probe."""

from __future__ import annotations

import torch


def length_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Index batches of similar length, shortest first, in a fixed order."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def pad(sequences: list[list[int]], value: int, left: bool = False) -> torch.Tensor:
    """[rows, longest] long tensor; the short sequences filled with `value` on the right (or left)."""
    width = max(len(sequence) for sequence in sequences)
    padded = torch.full((len(sequences), width), value, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if sequence:
            span = slice(width - len(sequence), width) if left else slice(0, len(sequence))
            padded[row, span] = torch.tensor(sequence, dtype=torch.long)
    return padded


def pad_with_mask(sequences: list[list[int]], pad_id: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask): padding is masked out of attention."""
    return pad(sequences, pad_id, left), pad([[1] * len(sequence) for sequence in sequences], 0, left)
