"""Gradient accumulation (equal to training on larger batches) and gradient clipping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mentor.callbacks.gradients import GradientAccumulation, GradientClip
from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders, TensorLoader
from mentor.optim import SGD
from mentor.train import Callback, Learner


def data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=gen)
    return x, (x[:, 0] - x[:, 1] > 0).long()


def sgd_learner(bs: int, n: int = 64, cbs: tuple[Callback, ...] = ()) -> Learner:
    """Plain SGD (no momentum, no weight decay) over unshuffled batches of `bs`."""
    x, y = data(n)
    train = TensorLoader(x, y, bs=bs, shuffle=False)
    valid = TensorLoader(x[:16], y[:16], bs=16)
    set_seed(0)  # the same initial weights for every learner
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    learn = Learner(
        DataLoaders(train, valid, device="cpu"),
        model,
        loss_func=nn.CrossEntropyLoss(),
        opt_func=lambda params, lr: SGD(params, lr=lr, mom=0.0),
        wd=0.0,
        cbs=cbs,
    )
    learn.progress.show = False
    return learn


class CountSteps(Callback):
    order = 90

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    def after_step(self) -> None:
        self.steps += 1


def test_accumulating_two_batches_of_8_equals_batches_of_16() -> None:
    accumulated, steps = sgd_learner(bs=8, cbs=(GradientAccumulation(2),)), CountSteps()
    accumulated.fit(1, 0.5, cbs=[steps])
    large = sgd_learner(bs=16)
    large.fit(1, 0.5)
    assert steps.steps == 4  # 8 batches of 8, one step per two of them
    initial = sgd_learner(bs=16).model.state_dict()
    for name, value in large.model.state_dict().items():
        assert not torch.allclose(value, initial[name], atol=1e-3), f"{name} did not train"
        torch.testing.assert_close(accumulated.model.state_dict()[name], value, atol=1e-6, rtol=0)
    # the recorded losses are the batches' own, not the ones divided for the backward pass
    small_losses, large_losses = accumulated.recorder.losses, large.recorder.losses
    assert (small_losses[0] + small_losses[1]) / 2 == pytest.approx(large_losses[0], abs=1e-6)


def test_without_accumulation_batches_of_8_differ() -> None:
    """Guards the test above: stepping every batch of 8 gives other weights."""
    small, large = sgd_learner(bs=8), sgd_learner(bs=16)
    small.fit(1, 0.5)
    large.fit(1, 0.5)
    assert not torch.allclose(small.model[0].weight, large.model[0].weight, atol=1e-4)


def test_partial_group_at_the_end_of_an_epoch_steps() -> None:
    steps = CountSteps()
    learn = sgd_learner(bs=8, n=56, cbs=(GradientAccumulation(2), steps))
    learn.fit(2, 0.1)
    assert steps.steps == 2 * 4  # 7 batches: steps after batches 2, 4, 6 and the last one


def test_partial_group_steps_with_its_own_mean() -> None:
    """56 items in batches of 8 accumulated by 2 = batches of 16, 16, 16 and a last one of 8."""
    accumulated = sgd_learner(bs=8, n=56, cbs=(GradientAccumulation(2),))
    accumulated.fit(1, 0.5)
    large = sgd_learner(bs=16, n=56)  # its last batch holds the 8 leftover items
    large.fit(1, 0.5)
    for name, value in large.model.state_dict().items():
        torch.testing.assert_close(accumulated.model.state_dict()[name], value, atol=1e-6, rtol=0)


def test_gradient_accumulation_rejects_n_acc_below_one() -> None:
    with pytest.raises(ValueError, match="n_acc must be at least 1, got 0"):
        GradientAccumulation(0)


class GradNorm(Callback):
    """Records the gradients' global norm (and a copy of the gradients) at before_step."""

    def __init__(self, order: int) -> None:
        super().__init__()
        self.order = order
        self.norms: list[float] = []
        self.grads: list[list[torch.Tensor]] = []

    def before_step(self) -> None:
        grads = [p.grad.clone() for p in self.learn.model.parameters() if p.grad is not None]
        self.norms.append(
            float(
                torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            )
        )
        self.grads.append(grads)


def test_gradient_clip_caps_the_norm_and_keeps_the_direction() -> None:
    before, after = GradNorm(order=19), GradNorm(order=21)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=gen) * 100  # huge inputs: huge gradients
    y = torch.randn(64, 1, generator=gen) * 1000
    dls = DataLoaders.from_tensors((x, y), (x[:16], y[:16]), bs=16, device="cpu")
    set_seed(0)
    learn = Learner(
        dls,
        nn.Linear(6, 1),
        loss_func=nn.MSELoss(),
        cbs=[GradientClip(max_norm=0.5), before, after],
    )
    learn.progress.show = False
    learn.fit(1, 1e-3)
    assert len(after.norms) == 4
    assert min(before.norms) > 10  # clipping had work to do
    for norm_before, norm_after, grads_before, grads_after in zip(
        before.norms, after.norms, before.grads, after.grads
    ):
        assert norm_after == pytest.approx(0.5, rel=1e-4)
        for g_before, g_after in zip(grads_before, grads_after):
            torch.testing.assert_close(g_after, g_before * (0.5 / norm_before), rtol=1e-4, atol=0)


def test_gradient_clip_leaves_small_gradients_alone() -> None:
    before, after = GradNorm(order=19), GradNorm(order=21)
    learn = sgd_learner(bs=16, cbs=(GradientClip(max_norm=1e6), before, after))
    learn.fit(1, 0.1)
    assert before.norms == after.norms and before.norms
