"""resume= takes the newest readable checkpoint; nothing is unpickled beyond tensors and plain values; a ckpt_path= that
is not a Hakim checkpoint is refused in one line."""

import logging
import pickle

import pytest
import torch

from conftest import RunsACommand
from hakim.train.checkpoints import CheckpointError, given_checkpoint, load_checkpoint, newest_checkpoint


def test_the_newest_readable_checkpoint_is_chosen_past_a_corrupt_one(tmp_path, caplog):
    torch.save({"global_step": 40, "state_dict": {}}, tmp_path / "step40-auroc0.700.ckpt")
    torch.save({"global_step": 50, "state_dict": {}}, tmp_path / "latest-step50.ckpt")
    torch.save({"global_step": 60, "state_dict": {}}, tmp_path / "last.ckpt")
    (tmp_path / "last.ckpt").write_bytes((tmp_path / "last.ckpt").read_bytes()[:100])  # killed mid-write

    with caplog.at_level(logging.WARNING):
        path, step = newest_checkpoint(tmp_path)
    assert (path.name, step) == ("latest-step50.ckpt", 50)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "last.ckpt: unreadable" in warnings[0] and "\n" not in warnings[0]


def test_a_tampered_checkpoint_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"global_step": 9, "state_dict": RunsACommand(marker)}, tmp_path / "step9.ckpt")
    torch.save({"global_step": 8, "state_dict": {}}, tmp_path / "step8.ckpt")

    with pytest.raises(CheckpointError, match="refused: not a Hakim checkpoint .it holds objects other than tensors"):
        load_checkpoint(tmp_path / "step9.ckpt")
    assert newest_checkpoint(tmp_path)[1] == 8
    assert not marker.exists()


def test_no_readable_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(FileNotFoundError, match="no readable checkpoint"):
        newest_checkpoint(tmp_path)


@pytest.mark.parametrize(
    "write",
    [
        lambda path, marker: path.write_bytes(pickle.dumps({"global_step": 9, "state_dict": RunsACommand(marker)})),
        lambda path, marker: torch.save({"global_step": 9, "state_dict": RunsACommand(marker)}, path),
        lambda path, marker: torch.save({"weights": torch.zeros(2)}, path),
    ],
    ids=["plain pickle", "torch.save of an object", "tensors without a step"],
)
def test_a_ckpt_path_that_is_not_a_hakim_checkpoint_is_refused_in_one_line(tmp_path, write):
    marker, path = tmp_path / "ran", tmp_path / "given.ckpt"
    write(path, marker)
    with pytest.raises(CheckpointError) as refused:
        given_checkpoint(path)
    message = str(refused.value)
    assert message.startswith(f"ckpt_path={path}: refused: not a Hakim checkpoint") and "\n" not in message
    assert (
        message.endswith("give a .ckpt file from a Hakim run's checkpoints/ folder") and "weights_only" not in message
    )
    assert not marker.exists()
