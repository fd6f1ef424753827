"""Flat losses against torch.nn.functional, their activation / decodes, and shape errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from mentor.train.losses import (
    BCEWithLogitsLossFlat,
    CrossEntropyLossFlat,
    FocalLoss,
    L1LossFlat,
    LabelSmoothingCrossEntropy,
    MSELossFlat,
    loss_activation,
    loss_decodes,
)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_cross_entropy_flat_on_text_shaped_output(gen: torch.Generator) -> None:
    pred = torch.randn(2, 7, 5, generator=gen)  # [B, T, C]
    targ = torch.randint(0, 5, (2, 7), generator=gen)
    expected = F.cross_entropy(pred.permute(0, 2, 1), targ)
    assert CrossEntropyLossFlat()(pred, targ) == pytest.approx(expected.item())


def test_cross_entropy_flat_on_segmentation_axis_1(gen: torch.Generator) -> None:
    pred = torch.randn(2, 4, 3, 5, generator=gen)  # [B, C, H, W]
    targ = torch.randint(0, 4, (2, 3, 5), generator=gen)
    targ[0, 0, :2] = -100
    weight = torch.tensor([1.0, 2.0, 0.5, 1.5])
    loss = CrossEntropyLossFlat(axis=1, weight=weight, label_smoothing=0.1)
    expected = F.cross_entropy(pred, targ, weight=weight, label_smoothing=0.1)
    assert loss(pred, targ) == pytest.approx(expected.item())
    per_pixel = CrossEntropyLossFlat(axis=1, reduction="none")(pred, targ.clamp(min=0))
    assert per_pixel.shape == (2, 3, 5)
    assert torch.allclose(per_pixel, F.cross_entropy(pred, targ.clamp(min=0), reduction="none"))


def test_cross_entropy_flat_accepts_narrow_ints_and_soft_targets(gen: torch.Generator) -> None:
    pred = torch.randn(6, 3, generator=gen)
    targ = torch.randint(0, 3, (6,), generator=gen)
    loss = CrossEntropyLossFlat()
    assert loss(pred, targ.to(torch.uint8)) == pytest.approx(F.cross_entropy(pred, targ).item())
    soft = F.one_hot(targ, 3).float()
    assert loss(pred, soft) == pytest.approx(F.cross_entropy(pred, targ).item())


def test_cross_entropy_flat_activation_and_decodes(gen: torch.Generator) -> None:
    out = torch.randn(2, 4, 3, generator=gen)
    loss = CrossEntropyLossFlat(axis=1)
    probs = loss.activation(out)
    assert torch.allclose(probs.sum(1), torch.ones(2, 3))
    assert torch.equal(loss.decodes(probs), out.argmax(1))


def test_cross_entropy_flat_shape_error_says_what_to_check() -> None:
    with pytest.raises(ValueError, match=r"hold 64 items of 10 classes .* hold 32"):
        CrossEntropyLossFlat()(torch.randn(64, 10), torch.zeros(32, dtype=torch.long))


def test_bce_flat_matches_functional_and_decodes_with_thresh(gen: torch.Generator) -> None:
    pred = torch.randn(8, 1, generator=gen)
    targ = (torch.rand(8, generator=gen) > 0.5).long()
    expected = F.binary_cross_entropy_with_logits(pred.reshape(-1), targ.float())
    loss = BCEWithLogitsLossFlat(thresh=0.7)
    assert loss(pred, targ) == pytest.approx(expected.item())
    probs = loss.activation(pred)
    assert torch.allclose(probs, pred.sigmoid())
    assert torch.equal(loss.decodes(probs), probs > 0.7)


def test_bce_flat_pos_weight_on_a_moved_label_axis(gen: torch.Generator) -> None:
    pred = torch.randn(4, 3, 5, generator=gen)  # labels on axis 1
    targ = (torch.rand(4, 3, 5, generator=gen) > 0.5).float()
    pos_weight = torch.tensor([1.0, 3.0, 0.5])
    loss = BCEWithLogitsLossFlat(axis=1, pos_weight=pos_weight)
    expected = F.binary_cross_entropy_with_logits(pred, targ, pos_weight=pos_weight[:, None])
    assert loss(pred, targ) == pytest.approx(expected.item())
    none = BCEWithLogitsLossFlat(axis=1, pos_weight=pos_weight, reduction="none")(pred, targ)
    assert none.shape == pred.shape


@pytest.mark.parametrize(
    ("loss_cls", "reference"), [(MSELossFlat, F.mse_loss), (L1LossFlat, F.l1_loss)]
)
def test_regression_losses_flatten_and_refuse_broadcasting(loss_cls, reference, gen) -> None:
    pred = torch.randn(10, 1, generator=gen)
    targ = torch.randn(10, generator=gen)
    loss = loss_cls()
    assert loss(pred, targ) == pytest.approx(reference(pred.reshape(-1), targ).item())
    assert loss(pred, torch.arange(10)) == pytest.approx(
        reference(pred.reshape(-1), torch.arange(10).float()).item()
    )
    assert loss.decodes(loss.activation(pred)) is pred
    with pytest.raises(ValueError, match=r"shape \[10, 2\] but targets have shape \[10, 3\]"):
        loss(torch.randn(10, 2), torch.randn(10, 3))
    with pytest.raises(ValueError, match="silently broadcast"):
        loss(torch.randn(10, 1), torch.randn(1, 10, 2))


def test_label_smoothing_cross_entropy_by_hand(gen: torch.Generator) -> None:
    pred = torch.randn(6, 4, generator=gen)
    targ = torch.randint(0, 4, (6,), generator=gen)
    log_probs = pred.log_softmax(-1)
    nll = -log_probs.gather(1, targ[:, None]).mean()
    expected = 0.9 * nll + 0.1 * (-log_probs.mean(-1)).mean()
    assert LabelSmoothingCrossEntropy(eps=0.1)(pred, targ) == pytest.approx(expected.item())


def test_focal_loss_reduces_to_cross_entropy_and_downweights_easy_items(gen) -> None:
    pred = torch.randn(12, 5, generator=gen)
    targ = torch.randint(0, 5, (12,), generator=gen)
    targ[:2] = -100
    ce = F.cross_entropy(pred, targ)
    assert FocalLoss(gamma=0.0)(pred, targ) == pytest.approx(ce.item(), rel=1e-5)
    assert FocalLoss(gamma=2.0)(pred, targ) < ce
    per_item = FocalLoss(reduction="none")(pred, targ)
    assert per_item.shape == (12,) and torch.all(per_item[:2] == 0)
    weight = torch.rand(5, generator=gen)
    weighted = FocalLoss(gamma=0.0, weight=weight, reduction="sum")(pred, targ)
    assert weighted == pytest.approx(F.cross_entropy(pred, targ, weight, reduction="sum").item())


def test_loss_helpers_use_the_loss_methods_or_sensible_defaults(gen) -> None:
    out = torch.randn(5, 3, generator=gen)
    bce_probs = loss_activation(nn.BCEWithLogitsLoss(), out)
    assert torch.allclose(bce_probs, out.sigmoid())
    assert torch.equal(loss_decodes(nn.BCEWithLogitsLoss(), bce_probs), bce_probs > 0.5)
    for ce in (nn.CrossEntropyLoss(), F.cross_entropy, CrossEntropyLossFlat()):
        probs = loss_activation(ce, out)
        assert torch.allclose(probs, out.softmax(-1))
        assert torch.equal(loss_decodes(ce, probs), out.argmax(-1))
    nll_probs = loss_activation(nn.NLLLoss(), out.log_softmax(-1))
    assert torch.allclose(nll_probs, out.softmax(-1))
    assert loss_activation(nn.MSELoss(), out) is out
    assert loss_decodes(nn.MSELoss(), out) is out
    custom = BCEWithLogitsLossFlat(thresh=0.9)
    assert torch.equal(loss_decodes(custom, loss_activation(custom, out)), out.sigmoid() > 0.9)


def test_segmentation_defaults_follow_pytorch_class_axis(gen: torch.Generator) -> None:
    out = torch.randn(2, 4, 3, 3, generator=gen)
    probs = loss_activation(nn.CrossEntropyLoss(), out)
    assert torch.allclose(probs.sum(1), torch.ones(2, 3, 3))
    assert loss_decodes(nn.CrossEntropyLoss(), probs).shape == (2, 3, 3)


class NoHostSync(TorchFunctionMode):
    """Fail on the tensor methods that would sync a GPU with the host."""

    FORBIDDEN = {
        torch.Tensor.item,
        torch.Tensor.tolist,
        torch.Tensor.cpu,
        torch.Tensor.__bool__,
        torch.Tensor.__float__,
        torch.Tensor.__int__,
        torch.Tensor.nonzero,
    }

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if func in self.FORBIDDEN:
            raise AssertionError(f"host sync in a loss: {func.__name__}")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    "loss",
    [
        CrossEntropyLossFlat(axis=1, weight=torch.ones(4)),
        FocalLoss(axis=1, weight=torch.ones(4)),
        LabelSmoothingCrossEntropy(axis=1),
    ],
)
def test_class_losses_never_sync(loss: nn.Module, gen: torch.Generator) -> None:
    pred = torch.randn(2, 4, 3, generator=gen)
    targ = torch.randint(0, 4, (2, 3), generator=gen)
    with NoHostSync():
        value = loss(pred, targ)
    assert torch.isfinite(value)


def test_regression_losses_never_sync(gen: torch.Generator) -> None:
    pred, targ = torch.randn(6, 1, generator=gen), torch.randn(6, generator=gen)
    with NoHostSync():
        values = [
            MSELossFlat()(pred, targ),
            L1LossFlat()(pred, targ),
            BCEWithLogitsLossFlat(pos_weight=torch.ones(1))(pred, targ.sigmoid()),
        ]
    assert all(torch.isfinite(v) for v in values)
