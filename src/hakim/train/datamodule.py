"""Serve prepared judge data to Lightning: tokenized once (cached), completion-only labels,
dynamic padding and batches grouped by length so little compute is spent on padding."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from hakim.batching import length_sorted_batches, pad, pad_with_mask
from hakim.data.dataset_io import read_manifest, read_split, resolve_dataset_dir
from hakim.file_writes import write_atomically
from hakim.prompting.prompt import ENCODING_VERSION, IGNORE_INDEX, encode_example
from hakim.prompting.style import PromptStyle
from hakim.verdict import label_token_ids

log = logging.getLogger(__name__)


# what an encoded item holds: a JudgeRecord's identity and its EncodedExample's ids. The names are part of
# the tokenized cache's key, so caches written before a field existed are rebuilt.
RECORD_FIELDS = ("id", "source", "label")
ENCODED_FIELDS = ("input_ids", "labels", "verdict_index")
ITEM_FIELDS = RECORD_FIELDS + ENCODED_FIELDS


def encoded_item(record, encoded) -> dict:
    """What the loaders serve for one row: the fields of ITEM_FIELDS, read from the record and its encoding."""
    return {
        **{name: getattr(record, name) for name in RECORD_FIELDS},
        **{name: getattr(encoded, name) for name in ENCODED_FIELDS},
    }


def _read_cache(path: Path) -> tuple[list[dict], dict] | None:
    """A tokenized split written by an earlier run, or None (with a warning) when it cannot be trusted.

    The cache is JSON, so reading one never runs code; a file that does not parse or lacks an item
    field is rebuilt rather than trained on.
    """
    if not path.exists():
        return None
    try:
        cached = json.loads(path.read_text())
        items, report = cached["items"], cached["report"]
        if not all(set(item) == set(ITEM_FIELDS) for item in items):
            raise ValueError(f"items without the fields {ITEM_FIELDS}")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        log.warning(
            "ignoring the tokenized cache %s (%s: %s); tokenizing again", path, type(error).__name__, str(error)[:120]
        )
        return None
    return items, report


class EncodedDataset(Dataset):
    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]

    @property
    def lengths(self) -> list[int]:
        return [len(item["input_ids"]) for item in self.items]


class EpochShuffle(Sampler[int]):
    """A permutation of `range(size)` reproducible for a (seed, epoch).

    It is the `sampler` of LengthGroupedBatchSampler because Lightning calls `set_epoch` at each epoch
    start on `loader.batch_sampler.sampler`, never on the batch sampler itself.
    """

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, purpose: str) -> random.Random:
        return random.Random(f"{self.seed}/{self.epoch}/{purpose}")

    def __iter__(self):
        order = list(range(self.size))
        self.rng("examples").shuffle(order)
        yield from order

    def __len__(self) -> int:
        return self.size


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of similar-length examples, a new order every epoch, reproducible for a (seed, epoch).

    Examples are shuffled, cut into pools of `pool_batches` batches, each pool sorted by length and
    cut into batches, and the batches shuffled again, so order is random but padding is small.
    Under DDP each rank takes every `num_replicas`-th batch of the same order (all ranks get the
    same number), and `resume_at` skips the batches a checkpointed run already trained on.
    """

    def __init__(
        self,
        lengths: list[int],
        batch_size: int,
        seed: int,
        pool_batches: int = 50,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        self.lengths = lengths
        self.batch_size = batch_size
        self.sampler = EpochShuffle(len(lengths), seed)
        self.pool_batches = pool_batches
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self._resume: tuple[int, int] | None = None

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def resume_at(self, epoch: int, batches_done: int) -> None:
        self._resume = (epoch, batches_done)

    def all_batches(self) -> list[list[int]]:
        order = list(self.sampler)
        pool_size = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool_size):
            pool = sorted(order[start : start + pool_size], key=lambda i: self.lengths[i])
            batches.extend(pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        if self.drop_last:
            batches = [batch for batch in batches if len(batch) == self.batch_size]
        self.sampler.rng("batches").shuffle(batches)
        return batches

    def batches(self) -> list[list[int]]:
        """This rank's batches for the current epoch."""
        batches = self.all_batches()
        usable = len(batches) - len(batches) % self.num_replicas
        return batches[:usable][self.rank :: self.num_replicas]

    def __iter__(self):
        # The order is drawn at the first batch, not when the iterator is created: on resume Lightning
        # creates it before it restores the epoch and the loader position.
        batches = self.batches()
        if self._resume is not None:
            epoch, done = self._resume
            self._resume = None
            if epoch == self.epoch:
                batches = batches[done:]
        yield from batches

    def __len__(self) -> int:
        full, rest = divmod(len(self.lengths), self.batch_size)
        n_batches = full if self.drop_last or rest == 0 else full + 1
        return n_batches // self.num_replicas


class ResumableLoader(DataLoader):
    """A DataLoader whose position Lightning stores in checkpoints (via state_dict/load_state_dict),
    so a run resumed mid-epoch continues with the next unseen batch instead of starting over."""

    def __init__(self, *args, position: Callable[[], tuple[int, int]], **kwargs):
        super().__init__(*args, **kwargs)
        self.position = position

    def state_dict(self) -> dict:
        epoch, batches_done = self.position()
        return {"epoch": epoch, "batches_done": batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.batch_sampler.resume_at(state["epoch"], state["batches_done"])


def collate(items: list[dict], pad_id: int) -> dict:
    """Right-pad to the longest example of the batch; padding is masked out of attention and loss."""
    input_ids, attention_mask = pad_with_mask([item["input_ids"] for item in items], pad_id)
    labels = pad([item["labels"] for item in items], IGNORE_INDEX)
    return {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": attention_mask,
        "verdict_index": torch.tensor([item["verdict_index"] for item in items]),
        "target": torch.tensor([item["label"] for item in items]),
        "ids": [item["id"] for item in items],
        "sources": [item["source"] for item in items],
    }


class JudgeDataModule(L.LightningDataModule):
    """Prepared dataset → tokenized, cached splits; V3 uses only rows that carry reasoning."""

    def __init__(
        self,
        dataset_dir: str,
        style: PromptStyle,
        max_length: int,
        batch_size: int,
        eval_batch_size: int,
        num_workers: int,
        seed: int,
        cache_dir: str,
        train_split: str,
        val_split: str,
        max_train_examples: int | None,
    ):
        """Every argument comes from conf/data/ (its one set of defaults) but `style`, composed from conf/style/."""
        super().__init__()
        self.dataset_dir = dataset_dir
        self.style = style
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.cache_dir = Path(cache_dir)
        self.splits = {"train": train_split, "validation": val_split}
        self.max_train_examples = max_train_examples
        self.tokenizer = None
        self.datasets: dict[str, EncodedDataset] = {}
        self.report: dict[str, dict] = {}

    def connect(self, tokenizer) -> None:
        """Hand over the model's tokenizer (known only once the model config is resolved)."""
        self.tokenizer = tokenizer
        # hashed once here rather than per split: a real tokenizer's JSON is megabytes
        self._tokenizer_id = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()[:16]

    @functools.cached_property
    def data_version(self) -> str:
        return read_manifest(self.dataset_dir)["version"]

    def _cache_path(self, split: str) -> Path:
        key = json.dumps(
            [
                self.data_version,
                split,
                self._tokenizer_id,
                self.tokenizer.chat_template,
                asdict(self.style),
                self.max_length,
                ITEM_FIELDS,
                ENCODING_VERSION,
            ],
            sort_keys=True,
        )
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"

    def _encode_split(self, split: str) -> tuple[list[dict], dict]:
        records = read_split(self.dataset_dir, split)
        label_ids = label_token_ids(self.tokenizer)
        items, truncated, too_long, without_reasoning = [], [], [], []
        for record in records:
            if self.style.writes_reasoning and not record.reasoning:
                without_reasoning.append(record.id)
                continue
            encoded = encode_example(self.tokenizer, record, self.style, self.max_length, label_ids)
            if encoded is None:
                too_long.append(record.id)
                continue
            if encoded.truncated:
                truncated.append(record.id)
            items.append(encoded_item(record, encoded))
        report = {
            "rows": len(records),
            "used": len(items),
            "truncated_passages": len(truncated),
            "too_long_even_without_passage": too_long,
            "without_reasoning_excluded_from_v3": len(without_reasoning),
        }
        return items, report

    def _load_split(self, stage_name: str) -> EncodedDataset:
        split = self.splits[stage_name]
        path = self._cache_path(split)
        cached = _read_cache(path)
        if cached is not None:
            items, report = cached
        else:
            items, report = self._encode_split(split)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, json.dumps({"items": items, "report": report}))
        if not items:
            raise ValueError(
                f"split '{split}' of {resolve_dataset_dir(self.dataset_dir)} has no usable rows "
                f"for {self.style.variant} "
                f"(report: {report})"
            )
        if stage_name == "train" and self.max_train_examples is not None and self.max_train_examples < len(items):
            # a seeded random subset, not the first rows: stored splits are grouped by source, so the first
            # N rows of a BoolQ + FIB split would be BoolQ alone
            chosen = random.Random(self.seed).sample(range(len(items)), self.max_train_examples)
            items = [items[i] for i in sorted(chosen)]
        if stage_name == "train":
            report = {**report, "trained_on": len(items)}  # `used` after data.max_train_examples
        self.report[stage_name] = report
        if report["truncated_passages"] or report["too_long_even_without_passage"]:
            log.warning(
                "%s: %d passages truncated to fit max_length=%d; %d rows too long even without a passage: %s",
                split,
                report["truncated_passages"],
                self.max_length,
                len(report["too_long_even_without_passage"]),
                report["too_long_even_without_passage"][:5],
            )
        return EncodedDataset(items)

    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is None:
            raise RuntimeError("call datamodule.connect(tokenizer) before setup")
        wanted = {"fit": ("train", "validation"), "validate": ("validation",)}
        for name in wanted.get(stage, ("train", "validation")):
            if name not in self.datasets:
                self.datasets[name] = self._load_split(name)

    def _loader(self, dataset: EncodedDataset, batch_sampler) -> DataLoader:
        pad_id = self.tokenizer.pad_token_id
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            collate_fn=functools.partial(collate, pad_id=pad_id),
            num_workers=self.num_workers,
        )

    def _replicas(self) -> tuple[int, int]:
        if self.trainer is None:
            return 1, 0
        return self.trainer.world_size, self.trainer.global_rank

    def _position(self) -> tuple[int, int]:
        loop = self.trainer.fit_loop
        return self.trainer.current_epoch, loop.epoch_loop.batch_progress.current.processed

    def train_dataloader(self) -> DataLoader:
        dataset = self.datasets["train"]
        num_replicas, rank = self._replicas()
        sampler = LengthGroupedBatchSampler(
            dataset.lengths, self.batch_size, self.seed, num_replicas=num_replicas, rank=rank
        )
        return ResumableLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=functools.partial(collate, pad_id=self.tokenizer.pad_token_id),
            num_workers=self.num_workers,
            position=self._position,
        )

    def _eval_loader(self, name: str) -> DataLoader:
        dataset = self.datasets[name]
        batches = length_sorted_batches(dataset.lengths, self.eval_batch_size)
        num_replicas, rank = self._replicas()
        batches = batches[rank::num_replicas]  # torchmetrics gathers the ranks' shares for the metrics
        return self._loader(dataset, batches)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("validation")

    def label_counts(self, split: str) -> list[int]:
        """How many rows of a set-up split ("train" or "validation") have label 0 and label 1."""
        labels = torch.tensor([item["label"] for item in self.datasets[split].items])
        return torch.bincount(labels, minlength=2).tolist()

    def labels_by_source(self, split: str) -> dict[str, set[int]]:
        """The labels that each source's rows in a set-up split ("train" or "validation") have."""
        labels: dict[str, set[int]] = {}
        for item in self.datasets[split].items:
            labels.setdefault(item["source"], set()).add(item["label"])
        return labels
