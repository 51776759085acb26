"""Tokenized once and cached; dynamic padding; length-grouped batches; V3 needs reasoning."""

import json
import logging

import torch

from conftest import RunsACommand
from hakim.data.dataset_io import read_split
from hakim.prompting.prompt import IGNORE_INDEX
from hakim.train.datamodule import ITEM_FIELDS, LengthGroupedBatchSampler
from hakim.train.fit import build_datamodule, train


def test_batches_are_padded_to_their_longest_row_with_masked_padding(train_config, tiny_tokenizer):
    datamodule = build_datamodule(train_config("data.batch_size=4"), tiny_tokenizer)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    lengths = batch["attention_mask"].sum(dim=1)
    assert batch["input_ids"].size(1) == int(lengths.max())
    padding = batch["attention_mask"] == 0
    assert (batch["labels"][padding] == IGNORE_INDEX).all()
    assert (batch["input_ids"][padding] == tiny_tokenizer.pad_token_id).all()


def test_tokenized_splits_are_cached_and_reused(train_config, tiny_tokenizer, monkeypatch):
    cfg = train_config()
    first = build_datamodule(cfg, tiny_tokenizer)
    first.setup("fit")
    cache_files = sorted(first.cache_dir.glob("*.json"))
    assert cache_files
    second = build_datamodule(cfg, tiny_tokenizer)
    monkeypatch.setattr(second, "_encode_split", lambda split: (_ for _ in ()).throw(AssertionError("re-tokenized")))
    second.setup("fit")
    assert [item["input_ids"] for item in second.datasets["train"].items] == [
        item["input_ids"] for item in first.datasets["train"].items
    ]


def test_a_tampered_tokenized_cache_is_refused_and_rebuilt(train_config, tiny_tokenizer, tmp_path, caplog):
    cfg = train_config(f"data.cache_dir={tmp_path / 'tokenized'}")  # this test's caches only, not the session's
    first = build_datamodule(cfg, tiny_tokenizer)
    first.setup("fit")
    marker = tmp_path / "ran"
    cache_files = sorted(first.cache_dir.glob("*.json"))
    for path in cache_files:
        torch.save({"items": RunsACommand(marker)}, path)

    second = build_datamodule(cfg, tiny_tokenizer)
    with caplog.at_level(logging.WARNING):
        second.setup("fit")
    assert not marker.exists()
    refusals = [
        record.getMessage() for record in caplog.records if "ignoring the tokenized cache" in record.getMessage()
    ]
    assert len(refusals) == len(cache_files)
    assert second.datasets["train"].items == first.datasets["train"].items
    assert all(json.loads(path.read_text())["items"] for path in cache_files), "the caches are written again"


def test_served_items_hold_exactly_the_fields_the_cache_key_names(train_config, tiny_tokenizer):
    datamodule = build_datamodule(train_config(), tiny_tokenizer)
    datamodule.setup("fit")
    for split in ("train", "validation"):
        records = {record.id: record for record in read_split(datamodule.dataset_dir, split)}
        items = datamodule.datasets[split].items
        assert items and all(set(item) == set(ITEM_FIELDS) for item in items)
        assert all(
            (item["source"], item["label"]) == (records[item["id"]].source, records[item["id"]].label) for item in items
        )


def test_truncation_is_counted(train_config, tiny_tokenizer):
    datamodule = build_datamodule(train_config("data.max_length=200"), tiny_tokenizer)
    datamodule.setup("fit")
    report = datamodule.report["train"]
    assert (
        report["truncated_passages"] > 0
        and report["used"] + len(report["too_long_even_without_passage"]) == report["rows"]
    )
    assert all(len(item["input_ids"]) <= 200 for item in datamodule.datasets["train"].items)


def test_length_grouping_wastes_less_padding_than_random_batches():
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(20, 1000, (400,), generator=generator).tolist()
    grouped = LengthGroupedBatchSampler(lengths, batch_size=8, seed=0).batches()
    plain = [list(range(i, min(i + 8, 400))) for i in range(0, 400, 8)]

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert sorted(i for b in grouped for i in b) == list(range(400))
    assert padding(grouped) < 0.3 * padding(plain)


def test_batch_order_is_reproducible_per_epoch_and_changes_between_epochs():
    sampler = LengthGroupedBatchSampler(list(range(100)), batch_size=4, seed=7)
    first = sampler.batches()
    assert first == LengthGroupedBatchSampler(list(range(100)), batch_size=4, seed=7).batches()
    sampler.set_epoch(1)
    assert sampler.batches() != first


def test_capped_training_set_is_a_seeded_sample_across_sources_not_the_first_rows(train_config, tiny_tokenizer):
    full = build_datamodule(train_config(), tiny_tokenizer)
    full.setup("fit")
    all_ids = [item["id"] for item in full.datasets["train"].items]
    sources = lambda ids: {i.rsplit("-", 1)[0] for i in ids}  # noqa: E731
    cap = len(all_ids) // 3
    assert len(sources(all_ids)) > 1 and len(sources(all_ids[:cap])) == 1, (
        "the sample's split should list sources in blocks"
    )

    def capped(seed):
        datamodule = build_datamodule(train_config(f"data.max_train_examples={cap}", f"seed={seed}"), tiny_tokenizer)
        datamodule.setup("fit")
        return [item["id"] for item in datamodule.datasets["train"].items]

    first = capped(1)
    assert len(first) == cap and set(first) <= set(all_ids) and len(set(first)) == cap
    assert sources(first) == sources(all_ids), "every source should be drawn from"
    assert capped(1) == first and capped(2) != first


def test_each_epoch_trains_on_every_row_in_a_new_order(train_config, tmp_path):
    cfg = train_config(
        "callbacks=rank_audit",
        "trainer.max_epochs=2",
        "data.batch_size=8",
        "data.max_length=160",
        "lora.r=4",
        "trainer.limit_val_batches=1",
    )
    train(cfg)
    ids = json.loads((tmp_path / "run" / "rank_audit" / "rank0.json").read_text())["ids"]
    first, second = ids[: len(ids) // 2], ids[len(ids) // 2 :]
    assert sorted(first) == sorted(second) and len(set(first)) == len(first)
    assert first != second
