"""Checkpoints carry a checksum: a flipped byte or a truncated file is refused in one line
naming the file, and resuming falls back to the previous checkpoint, which is kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mentor.train.checkpoint import load_file, previous
from tests.helpers import tiny_classifier


def _checkpointed(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A 3-epoch fit checkpointed every epoch, and its final weights."""
    learn = tiny_classifier(tmp_path)
    learn.fit(3, 1e-2, checkpoint_every="epoch")
    return tmp_path / "models" / "checkpoint.pt", learn.model.state_dict()


def _flip_a_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x40
    file.write_bytes(bytes(data))


def test_the_previous_checkpoint_is_kept(tmp_path: Path) -> None:
    file, _ = _checkpointed(tmp_path)
    assert load_file(file)["epoch"] == 3 and load_file(previous(file))["epoch"] == 2


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_checkpoint_is_refused_naming_the_file(damage: str, tmp_path: Path) -> None:
    file, _ = _checkpointed(tmp_path)
    if damage == "flip":
        _flip_a_byte(file)
    else:
        file.write_bytes(file.read_bytes()[:-100])
    message = "corrupt: its checksum does not match" if damage == "flip" else "truncated or corrupt"
    with pytest.raises(ValueError, match=f"checkpoint.pt' is {message}") as caught:
        load_file(file)
    assert "\n" not in str(caught.value)


def test_resume_falls_back_to_the_previous_checkpoint(tmp_path: Path) -> None:
    file, _ = _checkpointed(tmp_path)
    _flip_a_byte(file)
    learn = tiny_classifier(tmp_path)
    with pytest.warns(RuntimeWarning, match=r"checksum does not match.*resuming from the previous"):
        learn.fit(3, 1e-2, checkpoint_every="epoch", resume_from=file)
    assert len(learn.recorder.values) == 3  # epochs 1-2 from the kept checkpoint, then the third
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())


def test_resume_without_a_good_checkpoint_says_so_in_one_line(tmp_path: Path) -> None:
    file, _ = _checkpointed(tmp_path)
    _flip_a_byte(file)
    _flip_a_byte(previous(file))
    learn = tiny_classifier(tmp_path)
    with pytest.raises(ValueError, match="checkpoint.prev.pt' is corrupt"):
        learn.fit(3, 1e-2, resume_from=file)
