"""ReduceLROnPlateau, driven by scripted values of the monitored column."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mentor.callbacks.tracker import ReduceLROnPlateau
from mentor.optim import get_hyper
from mentor.train import Callback, Learner
from tests.helpers import Script, StopAfterEpoch, seeded_classifier


def make_learner(path: Path, seed: int = 0, two_groups: bool = False) -> Learner:
    """`seeded_classifier` (4 training batches); `two_groups`: one parameter group per
    layer."""

    def per_layer(model: nn.Module) -> list[list[nn.Parameter]]:
        return [list(model.get_submodule(name).parameters()) for name in ("0", "2")]

    return seeded_classifier(path, seed, splitter=per_layer if two_groups else None)


def epoch_lrs(learn: Learner) -> list[float]:
    """The learning rate of each epoch's first batch (4 batches an epoch)."""
    return learn.recorder.lrs[::4]


def test_lr_drops_by_factor_after_patience_flat_epochs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    learn = make_learner(tmp_path)
    reducer = ReduceLROnPlateau("valid_loss", patience=2)
    # epoch 0 sets the best; 1 and 2 are flat: the rate drops after epoch 2, then after 4
    learn.fit(6, 1e-2, cbs=[Script("valid_loss", [0.5] * 6), reducer])
    assert epoch_lrs(learn) == pytest.approx([1e-2, 1e-2, 1e-2, 1e-3, 1e-3, 1e-4])
    assert len(learn.recorder.lrs) == 24 and len(set(learn.recorder.lrs[:12])) == 1
    assert get_hyper(learn.opt, "lr") == pytest.approx([1e-4])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 2: no improvement of valid_loss for 2 epochs")
    assert lines[0].endswith("learning rate reduced to 1.00e-03")
    assert reducer.wait == 1 and (reducer.best, reducer.best_epoch) == (0.5, 0)


def test_lr_stays_while_improving_within_patience(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    values = [0.5, 0.6, 0.4, 0.45, 0.3, 0.35]  # never two flat epochs in a row
    learn.fit(6, 1e-2, cbs=[Script("valid_loss", values), ReduceLROnPlateau(patience=2)])
    assert learn.recorder.lrs == pytest.approx([1e-2] * 24)


def test_min_lr_is_a_floor_and_every_group_drops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    learn = make_learner(tmp_path, two_groups=True)
    reducer = ReduceLROnPlateau(patience=1, factor=4, min_lr=1e-3)
    learn.fit(5, [2e-3, 8e-2], cbs=[Script("valid_loss", [0.5] * 5), reducer])
    # after epochs 1, 2, 3, 4: (5e-4 -> floor 1e-3, 2e-2), (1e-3, 5e-3), (1e-3, 1.25e-3),
    # (1e-3, 3.1e-4 -> floor 1e-3)
    assert get_hyper(learn.opt, "lr") == pytest.approx([1e-3, 1e-3])
    assert reducer.lrs == pytest.approx([1e-3, 1e-3])
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_a_learning_rate_schedule_is_refused(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    with pytest.raises(ValueError, match=r"fit_one_cycle.*use learn\.fit"):
        learn.fit_one_cycle(2, 1e-2, cbs=[ReduceLROnPlateau()])


def test_factor_at_most_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"factor=0\.5.*above 1"):
        ReduceLROnPlateau(factor=0.5)


def test_resume_is_exact(tmp_path: Path) -> None:
    values = [0.5, 0.5, 0.4, 0.4, 0.4, 0.4]

    def cbs() -> list[Callback]:
        return [Script("valid_loss", values), ReduceLROnPlateau(patience=1)]

    full = make_learner(tmp_path / "full")
    full.fit(6, 1e-2, cbs=cbs())
    stopped = make_learner(tmp_path / "run")
    stopped.fit(6, 1e-2, cbs=[*cbs(), StopAfterEpoch(3)], checkpoint_every="epoch")
    resumed_cbs = cbs()
    resumed = make_learner(tmp_path / "run", seed=123)
    resumed.fit(6, 1e-2, cbs=resumed_cbs, resume_from=tmp_path / "run/models/checkpoint.pt")
    assert epoch_lrs(full) == pytest.approx([1e-2, 1e-2, 1e-3, 1e-3, 1e-4, 1e-5])
    assert resumed.recorder.lrs == full.recorder.lrs
    reducer = resumed_cbs[1]
    assert isinstance(reducer, ReduceLROnPlateau)
    state = reducer.state_dict()
    assert state == {"best": 0.4, "best_epoch": 2, "wait": 0, "lrs": pytest.approx([1e-6])}
    for name, value in full.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
