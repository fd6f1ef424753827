"""MixUp and CutMix: the blends of inputs and targets, the box area, the losses they work with."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.callbacks.mixup import CutMix, MixUp
from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders, TensorLoader
from mentor.train import Callback, Learner
from mentor.train.losses import (
    BCEWithLogitsLossFlat,
    CrossEntropyLossFlat,
    FocalLoss,
    LabelSmoothingCrossEntropy,
)
from tests.helpers import StopAfterEpoch


class Spy(Callback):
    """Keeps the raw batch (before MixUp) and what the loss then received."""

    order = 0

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def before_batch(self) -> None:
        if self.learn.training:
            self.raw.append((self.learn.xb[0].clone(), self.learn.yb[0].clone()))

    def after_loss(self) -> None:
        if self.learn.training:
            self.seen.append((self.learn.xb[0].clone(), self.learn.yb[0].clone()))


def image_learner(mix: Callback, y: torch.Tensor, loss: nn.Module, n_out: int) -> Learner:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(32, 3, 8, 8, generator=gen)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, n_out)
    )
    dls = DataLoaders(TensorLoader(x, y, bs=8), TensorLoader(x[:8], y[:8], bs=8), device="cpu")
    learn = Learner(dls, model, loss_func=loss, cbs=[mix])
    learn.progress.show = False
    return learn


def labels(n: int = 32, classes: int = 3) -> torch.Tensor:
    return torch.arange(n) % classes


def test_a_mixup_batch_is_the_blend_of_each_item_and_its_partner() -> None:
    set_seed(0)
    mix, spy = MixUp(0.4), Spy()
    learn = image_learner(mix, labels(), CrossEntropyLossFlat(), 3)
    learn.add_cbs([spy])
    with learn.added_cbs([Last(mix)]):
        learn.fit(1, 1e-3)
    (x, y), (mixed_x, mixed_y) = spy.raw[-1], spy.seen[-1]
    lam, partner = Last.lam, Last.shuffle
    assert bool((lam >= 0.5).all()) and bool((lam <= 1).all())
    assert not torch.equal(partner, torch.arange(8))
    expected_x = lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * x[partner]
    torch.testing.assert_close(mixed_x, expected_x)
    one_hot = nn.functional.one_hot(y, 3).float()
    expected_y = lam.view(-1, 1) * one_hot + (1 - lam.view(-1, 1)) * one_hot[partner]
    torch.testing.assert_close(mixed_y, expected_y)
    torch.testing.assert_close(mixed_y.sum(1), torch.ones(8))


class Last(Callback):
    """Copies the mixer's draws for the batch (the class attributes hold the last batch's)."""

    order = 13
    lam = torch.zeros(0)
    shuffle = torch.zeros(0)

    def __init__(self, mix: MixUp | CutMix) -> None:
        super().__init__()
        self.mix = mix

    def after_loss(self) -> None:
        if self.learn.training:
            Last.lam, Last.shuffle = self.mix.lam.clone(), self.mix.shuffle.clone()


def test_mixup_mixes_multi_hot_targets_and_trains_with_bce() -> None:
    set_seed(0)
    gen = torch.Generator().manual_seed(1)
    y = (torch.rand(32, 4, generator=gen) > 0.5).float()
    mix, spy = MixUp(0.4), Spy()
    learn = image_learner(mix, y, BCEWithLogitsLossFlat(), 4)
    learn.add_cbs([spy, Last(mix)])
    learn.fit(1, 1e-3)
    (_, raw_y), (_, mixed_y) = spy.raw[-1], spy.seen[-1]
    lam = Last.lam.view(-1, 1)
    torch.testing.assert_close(mixed_y, lam * raw_y + (1 - lam) * raw_y[Last.shuffle])
    assert torch.isfinite(torch.tensor(learn.recorder.values[-1]["train_loss"]))


def test_mixup_composes_with_label_smoothing() -> None:
    """Label smoothing spreads eps over the classes of the blended (soft) target."""
    torch.manual_seed(0)
    pred = torch.randn(8, 3)
    soft = torch.softmax(torch.randn(8, 3), 1)
    eps = 0.1
    expected = -(((1 - eps) * soft + eps / 3) * pred.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(LabelSmoothingCrossEntropy(eps)(pred, soft), expected)
    set_seed(0)
    learn = image_learner(MixUp(), labels(), LabelSmoothingCrossEntropy(), 3)
    learn.fit(1, 1e-3)
    assert learn.recorder.values[-1]["train_loss"] > 0


def test_validation_batches_are_not_mixed() -> None:
    set_seed(0)
    learn = image_learner(MixUp(), labels(), CrossEntropyLossFlat(), 3)
    learn.fit(1, 1e-3)
    plain = Learner(learn.dls, learn.model, loss_func=CrossEntropyLossFlat())
    plain.progress.show = False
    assert learn.validate()["valid_loss"] == pytest.approx(plain.validate()["valid_loss"])


def test_cutmix_box_covers_one_minus_lam_of_the_image() -> None:
    set_seed(0)
    mix, spy = CutMix(1.0), Spy()
    learn = image_learner(mix, labels(), CrossEntropyLossFlat(), 3)
    learn.add_cbs([spy, Last(mix)])
    learn.fit(2, 1e-3)
    areas = []
    for (x, _), (mixed_x, _) in zip(spy.raw, spy.seen):
        changed = (mixed_x != x).any(1)  # [B, H, W]: pixels taken from the partner
        areas.append(changed.float().mean().item())
    # the last batch: the box and lam agree exactly, pixels outside the box are untouched
    (x, y), (mixed_x, mixed_y) = spy.raw[-1], spy.seen[-1]
    top, bottom, left, right = mix.box
    lam = float(Last.lam[0])
    assert lam == pytest.approx(1 - (bottom - top) * (right - left) / 64)
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[top:bottom, left:right] = True
    torch.testing.assert_close(mixed_x[..., ~inside], x[..., ~inside])
    torch.testing.assert_close(mixed_x[..., inside], x[Last.shuffle][..., inside])
    one_hot = nn.functional.one_hot(y, 3).float()
    torch.testing.assert_close(mixed_y, lam * one_hot + (1 - lam) * one_hot[Last.shuffle])
    assert len(set(areas)) > 1  # a new box every batch


def test_cutmix_pastes_the_partners_mask_into_a_mask_target() -> None:
    mix = CutMix()
    learn = image_learner(mix, labels(), CrossEntropyLossFlat(), 3)
    x = torch.rand(4, 3, 8, 8)
    masks = torch.randint(0, 3, (4, 8, 8))
    learn.xb, learn.yb = (x,), (masks,)
    torch.manual_seed(3)
    mix.before_batch()
    learn.pred = torch.zeros(4, 3, 8, 8)
    mix.after_pred()
    top, bottom, left, right = mix.box
    expected = masks.clone()
    expected[:, top:bottom, left:right] = masks[mix.shuffle][:, top:bottom, left:right]
    assert torch.equal(learn.yb[0], expected)


def test_bad_settings_and_inputs_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="alpha=0"):
        MixUp(0)
    mix = MixUp()
    learn = image_learner(mix, labels(), CrossEntropyLossFlat(), 3)
    learn.xb, learn.yb = (torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 3)), (labels(4),)
    with pytest.raises(TypeError, match="tabular or text"):
        mix.before_batch()
    learn = image_learner(MixUp(), labels(), FocalLoss(), 3)
    with pytest.raises(ValueError, match="CrossEntropyLossFlat"):  # focal loss wants indices
        learn.fit(1, 1e-3)


def test_mixup_resumes_exactly_from_a_checkpoint(tmp_path) -> None:
    """The draws come from the global generator that checkpoints keep: a fit stopped after
    its first epoch and resumed (from other weights and generator states) ends with the
    uninterrupted fit's weights."""

    def learner(seed: int) -> Learner:
        set_seed(seed)
        learn = image_learner(MixUp(), labels(), CrossEntropyLossFlat(), 3)
        learn.path = tmp_path
        return learn

    full = learner(0)
    full.fit(2, 1e-2)
    stopped = learner(0)
    stopped.fit(2, 1e-2, checkpoint_every="epoch", cbs=[StopAfterEpoch(0)])
    resumed = learner(123)
    resumed.fit(2, 1e-2, resume_from=tmp_path / "models" / "checkpoint.pt")
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, full.model.state_dict()[name]), name
