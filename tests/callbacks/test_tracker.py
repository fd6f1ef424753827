"""Early stopping and save-best, driven by scripted values of the monitored column."""

from __future__ import annotations

import copy
import operator
from pathlib import Path

import pytest
import torch

from mentor.callbacks.tracker import EarlyStoppingCallback, SaveModelCallback
from mentor.train import Callback, Learner
from tests.helpers import Script, tiny_classifier


class Snapshots(Callback):
    """Copies of the weights at the end of each epoch, and what the save file held then."""

    order = 70

    def __init__(self, file: Path) -> None:
        super().__init__()
        self.file = file
        self.weights: list[dict[str, torch.Tensor]] = []
        self.saved: list[dict[str, torch.Tensor] | None] = []

    def after_epoch(self) -> None:
        self.weights.append(copy.deepcopy(self.learn.model.state_dict()))
        exists = self.file.exists()
        self.saved.append(torch.load(self.file, weights_only=True)["model"] if exists else None)


def make_learner(path: Path) -> Learner:
    return tiny_classifier(path)


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path: Path) -> None:
    values = [0.5, 0.4, 0.45, 0.42, 0.41, 0.3]
    stopper = EarlyStoppingCallback("valid_loss", patience=2)
    learn = make_learner(tmp_path)
    learn.fit(len(values), 1e-2, cbs=[Script("valid_loss", values), stopper])
    assert [row["epoch"] for row in learn.recorder.values] == [0, 1, 2, 3]
    assert stopper.stopped_epoch == 3
    assert (stopper.best, stopper.best_epoch) == (0.4, 1)
    assert stopper.state_dict() == {"best": 0.4, "best_epoch": 1, "wait": 2}


def test_early_stopping_never_fires_while_improving(tmp_path: Path) -> None:
    values = [0.5, 0.4, 0.38, 0.37, 0.36, 0.2]
    stopper = EarlyStoppingCallback("valid_loss", patience=2)
    learn = make_learner(tmp_path)
    learn.fit(len(values), 1e-2, cbs=[Script("valid_loss", values), stopper])
    assert len(learn.recorder.values) == 6
    assert stopper.stopped_epoch is None and stopper.best_epoch == 5


def test_min_delta_ignores_small_improvements(tmp_path: Path) -> None:
    # improvements: 0.5 -> 0.4 (by 0.1) counts; 0.38 and 0.37 improve on 0.4 by less than
    # 0.05, so epochs 2 and 3 wait and patience 2 stops at epoch 3
    values = [0.5, 0.4, 0.38, 0.37, 0.36, 0.2]
    stopper = EarlyStoppingCallback("valid_loss", min_delta=0.05, patience=2)
    learn = make_learner(tmp_path)
    learn.fit(len(values), 1e-2, cbs=[Script("valid_loss", values), stopper])
    assert len(learn.recorder.values) == 4
    assert (stopper.stopped_epoch, stopper.best_epoch, stopper.best) == (3, 1, 0.4)


def test_accuracy_is_better_when_higher(tmp_path: Path) -> None:
    values = [0.6, 0.7, 0.65, 0.68, 0.9]
    stopper = EarlyStoppingCallback("accuracy", patience=2)
    learn = make_learner(tmp_path)
    learn.fit(len(values), 1e-2, cbs=[Script("accuracy", values), stopper])
    assert stopper.comp is operator.gt
    assert (stopper.stopped_epoch, stopper.best_epoch, stopper.best) == (3, 1, 0.7)
    assert len(learn.recorder.values) == 4


def test_explicit_comp_overrides_the_guess(tmp_path: Path) -> None:
    values = [0.6, 0.7, 0.65, 0.68, 0.9]
    stopper = EarlyStoppingCallback("accuracy", comp=operator.lt, patience=2)
    learn = make_learner(tmp_path)
    learn.fit(len(values), 1e-2, cbs=[Script("accuracy", values), stopper])
    assert (stopper.stopped_epoch, stopper.best_epoch, stopper.best) == (2, 0, 0.6)


def test_unknown_monitor_names_the_columns(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    with pytest.raises(ValueError, match=r"cannot monitor 'f1_score'.*'accuracy'"):
        learn.fit(1, cbs=[EarlyStoppingCallback("f1_score")])


def test_save_model_saves_each_improvement_and_loads_the_best(tmp_path: Path) -> None:
    values = [0.5, 0.4, 0.45, 0.3, 0.35]
    learn = make_learner(tmp_path)
    saver = SaveModelCallback("valid_loss", fname="best")
    snapshots = Snapshots(tmp_path / "models" / "best.pth")
    learn.fit(len(values), 1e-2, cbs=[Script("valid_loss", values), saver, snapshots])
    improved = [True, True, False, True, False]
    for epoch, is_best in enumerate(improved):
        saved, weights = snapshots.saved[epoch], snapshots.weights[epoch]
        assert saved is not None
        assert same(saved, weights) == is_best, f"epoch {epoch}"
    assert same(snapshots.saved[2], snapshots.weights[1])  # still the epoch-1 weights
    assert saver.best_epoch == 3
    assert not same(snapshots.weights[4], snapshots.weights[3])
    assert same(learn.model.state_dict(), snapshots.weights[3])  # the best, loaded back
    assert set(torch.load(tmp_path / "models" / "best.pth", weights_only=True)) == {"model"}


def test_save_model_every_epoch_writes_one_file_per_epoch(tmp_path: Path) -> None:
    values = [0.5, 0.4, 0.45]
    learn = make_learner(tmp_path)
    saver = SaveModelCallback("valid_loss", fname="snap", every_epoch=True, with_opt=True)
    snapshots = Snapshots(tmp_path / "unused.pth")
    learn.fit(len(values), 1e-2, cbs=[Script("valid_loss", values), saver, snapshots])
    files = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert files == ["snap_0.pth", "snap_1.pth", "snap_2.pth"]
    for epoch in range(3):
        state = torch.load(tmp_path / "models" / f"snap_{epoch}.pth", weights_only=True)
        assert set(state) == {"model", "opt"}
        assert same(state["model"], snapshots.weights[epoch])
    assert same(learn.model.state_dict(), snapshots.weights[2])  # nothing reloaded
