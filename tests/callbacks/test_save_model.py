"""SaveModelCallback's kept files: every N epochs, the last k, the top k by the monitor;
the files on disk after each epoch are exactly the expected set, also after a resume."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from mentor.callbacks.tracker import SaveModelCallback
from mentor.train import Callback, Learner, accuracy
from tests.helpers import Script, StopAfterEpoch, seeded_classifier


class Files(Callback):
    """The epochs of the `snap_<epoch>.pth` files on disk, and the weights, after each epoch."""

    order = 70

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[list[int]] = []
        self.weights: list[dict[str, torch.Tensor]] = []

    def after_epoch(self) -> None:
        self.epochs.append(snap_files(self.learn.path))
        self.weights.append(copy.deepcopy(self.learn.model.state_dict()))


NAN = float("nan")


def snap_files(path: Path) -> list[int]:
    return sorted(int(file.stem.split("_")[1]) for file in (path / "models").glob("snap_*.pth"))


def make_learner(path: Path, seed: int = 0) -> Learner:
    """`seeded_classifier` with accuracy."""
    return seeded_classifier(path, seed, metrics=[accuracy])


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("every_epoch", "keep_last", "expected"),
    [
        (True, 2, [[0], [0, 1], [1, 2], [2, 3], [3, 4]]),
        (2, None, [[0], [0], [0, 2], [0, 2], [0, 2, 4]]),
        (2, 1, [[0], [0], [2], [2], [4]]),
    ],
)
def test_every_epoch_and_keep_last_leave_the_expected_files(
    tmp_path: Path, every_epoch: bool | int, keep_last: int | None, expected: list[list[int]]
) -> None:
    learn = make_learner(tmp_path)
    saver = SaveModelCallback(fname="snap", every_epoch=every_epoch, keep_last=keep_last)
    files = Files()
    learn.fit(5, 1e-2, cbs=[saver, files])
    assert files.epochs == expected
    last = expected[-1][-1]
    saved = torch.load(tmp_path / "models" / f"snap_{last}.pth", weights_only=True)["model"]
    assert same(saved, files.weights[last])
    assert same(learn.model.state_dict(), files.weights[-1])  # nothing reloaded


@pytest.mark.parametrize(
    ("monitor", "values", "top_k", "expected", "best"),
    [
        ("valid_loss", [0.5, 0.4, 0.45, 0.3, 0.35], 2, [[0], [0, 1], [1, 2], [1, 3], [3, 4]], 3),
        ("accuracy", [0.6, 0.7, 0.65, 0.9, 0.8], 1, [[0], [1], [1], [3], [3]], 3),
        ("valid_loss", [0.5, NAN, 0.4, 0.6, 0.45], 2, [[0], [0], [0, 2], [0, 2], [2, 4]], 2),
    ],
)  # fmt: skip
def test_top_k_keeps_the_best_epochs_and_loads_the_best(
    tmp_path: Path,
    monitor: str,
    values: list[float],
    top_k: int,
    expected: list[list[int]],
    best: int,
) -> None:
    learn = make_learner(tmp_path)
    saver = SaveModelCallback(monitor, fname="snap", top_k=top_k)
    files = Files()
    learn.fit(len(values), 1e-2, cbs=[Script(monitor, values), saver, files])
    assert files.epochs == expected
    ranked = sorted(expected[-1], key=lambda e: values[e], reverse=monitor == "accuracy")
    assert [epoch for epoch, _ in saver.kept] == ranked
    assert saver.kept[0][0] == best
    assert same(learn.model.state_dict(), files.weights[best])  # the best, loaded back
    assert not same(files.weights[-1], files.weights[best])


def test_saving_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="keep_last=2 keeps the newest files of every_epoch"):
        SaveModelCallback(keep_last=2)
    with pytest.raises(ValueError, match="top_k=3 keeps the best epochs and every_epoch=True"):
        SaveModelCallback(every_epoch=True, top_k=3)
    with pytest.raises(ValueError, match="top_k=0: keep at least 1 file"):
        SaveModelCallback(top_k=0)
    with pytest.raises(ValueError, match="every_epoch=-1"):
        SaveModelCallback(every_epoch=-1)


def test_top_k_resumes_exactly_and_deletes_the_right_files(tmp_path: Path) -> None:
    values = [0.5, 0.4, 0.45, 0.3, 0.35]

    checkpoint = tmp_path / "run" / "models" / "checkpoint.pt"

    def fit(
        learn: Learner, extra: Callback | None = None, resume: bool = False
    ) -> SaveModelCallback:
        saver = SaveModelCallback(fname="snap", top_k=2)
        cbs = [Script("valid_loss", values), saver, *([extra] if extra else [])]
        learn.fit(
            5, 1e-2, cbs=cbs, checkpoint_every="epoch", resume_from=checkpoint if resume else None
        )
        return saver

    full = make_learner(tmp_path / "full")
    full_saver = fit(full)
    fit(make_learner(tmp_path / "run"), StopAfterEpoch(2))
    assert snap_files(tmp_path / "run") == [1, 2]
    resumed = make_learner(tmp_path / "run", seed=123)
    files = Files()
    saver = fit(resumed, files, resume=True)
    assert files.epochs == [[1, 3], [3, 4]]  # epochs 3 and 4, deleting 2 then 1
    assert saver.kept == full_saver.kept == [(3, 0.3), (4, 0.35)]
    assert snap_files(tmp_path / "run") == snap_files(tmp_path / "full") == [3, 4]
    assert same(resumed.model.state_dict(), full.model.state_dict())
