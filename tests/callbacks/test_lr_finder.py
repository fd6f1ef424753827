"""The learning-rate finder: the sweep, the exact restore afterwards, and the suggestions."""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from mentor.callbacks.lr_finder import (
    LRFinder,
    SuggestedLRs,
    lr_find,
    minimum,
    slide,
    steep,
    valley,
)
from mentor.core.seed import get_rng_state, set_rng_state, set_seed
from mentor.data.loaders import DataLoaders
from mentor.train import Learner, accuracy


def make_learner(n: int = 512, bs: int = 16) -> Learner:
    set_seed(0)
    x = torch.randn(n + 64, 8)
    y = (x[:, :4].sum(1) > 0).long()
    dls = DataLoaders.from_tensors((x[:n], y[:n]), (x[n:], y[n:]), bs=bs, device="cpu")
    model = nn.Sequential(
        nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2)
    )
    learn = Learner(dls, model)
    learn.progress.show = False
    return learn


def assert_states_equal(after: Any, before: Any, where: str = "") -> None:
    """Nested dicts / lists / tuples of tensors and plain values are exactly equal."""
    if isinstance(before, torch.Tensor):
        assert torch.equal(after, before), where
    elif isinstance(before, dict):
        assert after.keys() == before.keys(), where
        for key in before:
            assert_states_equal(after[key], before[key], f"{where}/{key}")
    elif isinstance(before, list | tuple):
        assert len(after) == len(before), where
        for i, (a, b) in enumerate(zip(after, before)):
            assert_states_equal(a, b, f"{where}/{i}")
    else:
        assert after == before, where


def test_lr_find_restores_model_optimizer_and_generators() -> None:
    learn = make_learner()
    learn.fit_one_cycle(1, 1e-2)  # a trained model, an optimizer with state and its own lr
    model_before = copy.deepcopy(learn.model.state_dict())
    opt_before = copy.deepcopy(learn.opt.state_dict())
    assert opt_before["state"], "the optimizer should have state to restore"
    rng_before = get_rng_state()

    lr_find(learn, num_it=40, show_plot=False)

    assert len(learn.recorder.lrs) == 40  # the sweep did train
    assert_states_equal(learn.model.state_dict(), model_before, "model")
    assert_states_equal(learn.opt.state_dict(), opt_before, "opt")
    assert all(p.grad is None for p in learn.model.parameters())
    after_restore = torch.rand(5)
    set_rng_state(rng_before)
    assert torch.equal(after_restore, torch.rand(5))


def test_sweep_is_geometric_from_start_lr() -> None:
    learn = make_learner()
    start_lr, end_lr, num_it = 1e-6, 1.0, 50
    learn.lr_find(start_lr=start_lr, end_lr=end_lr, num_it=num_it, stop_div=False, show_plot=False)
    lrs = np.array(learn.recorder.lrs)
    assert len(lrs) == num_it  # 32 batches per epoch: the sweep runs across two epochs
    assert lrs[0] == pytest.approx(start_lr)
    ratios = lrs[1:] / lrs[:-1]
    np.testing.assert_allclose(ratios, (end_lr / start_lr) ** (1 / num_it), rtol=1e-9)
    assert len(learn.recorder.smooth_losses) == num_it


def test_sweep_stops_early_when_the_loss_diverges() -> None:
    learn = make_learner()
    learn.lr_find(start_lr=1e-3, end_lr=1e8, num_it=100, show_plot=False)
    n_recorded = len(learn.recorder.lrs)
    assert 0 < n_recorded < 100
    losses = learn.recorder.smooth_losses
    assert not math.isfinite(losses[-1]) or losses[-1] > 4 * min(losses)


def test_sweep_without_stop_div_runs_to_the_end() -> None:
    learn = make_learner()
    learn.lr_find(start_lr=1e-3, end_lr=1e3, num_it=60, stop_div=False, show_plot=False)
    assert len(learn.recorder.lrs) == 60


def test_lr_finder_checks_its_range() -> None:
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        LRFinder(start_lr=1.0, end_lr=1e-3)


def test_suggestions_are_a_named_tuple_and_plot() -> None:
    learn = make_learner()

    def tenth_of_last(lrs: np.ndarray, losses: np.ndarray) -> float:
        return float(lrs[-1] / 10)

    result = learn.lr_find(
        num_it=60, show_plot=True, suggest_funcs=(valley, minimum, steep, slide, tenth_of_last)
    )
    assert isinstance(result, SuggestedLRs) and isinstance(result, tuple)
    assert SuggestedLRs._fields == ("valley", "minimum", "steep", "slide", "other")
    assert all(isinstance(getattr(result, name), float) for name in SuggestedLRs._fields[:4])
    assert result.other is not None and set(result.other) == {"tenth_of_last"}
    assert set(result.as_dict()) == {"valley", "minimum", "steep", "slide", "tenth_of_last"}
    assert all(1e-7 <= lr <= 10 for lr in result.as_dict().values())
    only_valley = learn.lr_find(num_it=30, show_plot=False, suggest_funcs=(valley,))
    assert only_valley.minimum is None and only_valley.other is None
    assert only_valley.as_dict().keys() == {"valley"}
    fig = learn.recorder.plot_lr_find(only_valley.as_dict())
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_xscale() == "log"


# ----- suggestion functions on synthetic curves -----

LRS = np.logspace(-7, 1, 161)  # 20 points per decade
LOG_LR = np.log10(LRS)


def u_curve() -> np.ndarray:
    """Flat at 1.0, a sigmoid descent to 0.2 centred at lr=1e-3 (steepest there), a minimum
    at lr=1e-1, then a sharp rise."""
    loss = 1.0 - 0.8 / (1 + np.exp(-3 * (LOG_LR + 3)))
    rise = LOG_LR > -1
    loss[rise] = loss[LOG_LR <= -1][-1] + 2 * (LOG_LR[rise] + 1) ** 2
    return loss


def test_minimum_is_a_tenth_of_the_lowest_loss_lr() -> None:
    losses = u_curve()
    lowest = int(np.argmin(losses))
    assert LRS[lowest] == pytest.approx(1e-1, rel=0.15)
    assert minimum(LRS, losses) == pytest.approx(LRS[lowest] / 10)


def test_steep_is_where_the_loss_falls_fastest() -> None:
    assert abs(math.log10(steep(LRS, u_curve())) + 3) <= 0.05 + 1e-9


def test_valley_is_halfway_down_the_main_descent() -> None:
    losses = u_curve()
    # an early, short dip (noise at tiny learning rates) must not be taken for the valley
    losses[10:14] = [0.97, 0.95, 0.97, 1.02]
    suggestion = valley(LRS, losses)
    index = int(np.searchsorted(LRS, suggestion))
    lowest = int(np.argmin(losses))
    assert 1e-4 < suggestion < LRS[lowest]
    top = losses[:lowest].max()
    halfway = losses[lowest] + 0.5 * (top - losses[lowest])
    assert losses[index] <= halfway < losses[index - 1]
    assert np.all(np.diff(losses[index - 5 : index + 6]) < 0)  # inside the long descent


def test_slide_is_below_the_minimum_but_past_the_valley() -> None:
    losses = u_curve()
    lowest = int(np.argmin(losses))
    suggestion = slide(LRS, losses)
    assert valley(LRS, losses) < suggestion < LRS[lowest]
    index = int(np.searchsorted(LRS, suggestion))
    drop = losses[:lowest].max() - losses[lowest]
    assert losses[index] - losses[lowest] >= 0.1 * drop
    assert losses[index + 1] - losses[lowest] < 0.1 * drop


def test_suggestions_on_a_curve_without_descent() -> None:
    rising = np.linspace(1.0, 3.0, len(LRS))
    edge = LRS[int(np.argmax(rising > 1.25))]  # risen a quarter: already too fast
    for func in (valley, steep, slide):
        assert func(LRS, rising) == pytest.approx(edge / 10)
    assert minimum(LRS, rising) == pytest.approx(LRS[0] / 10)


@pytest.mark.slow
def test_valley_on_mnist_cnn(mnist_sample: tuple[torch.Tensor, ...]) -> None:
    from bench.common import small_cnn

    x_train, y_train, x_valid, y_valid = mnist_sample
    set_seed(0)
    dls = DataLoaders.from_tensors((x_train, y_train), (x_valid, y_valid), bs=128, device="cpu")
    learn = Learner(dls, small_cnn(), metrics=[accuracy])
    learn.progress.show = False
    result = learn.lr_find(show_plot=False)
    print(f"mnist lr_find: {result.as_dict()}")
    assert result.valley is not None and 1e-4 <= result.valley <= 1
    assert result.steep is not None and result.minimum is not None
    assert result.valley < result.minimum * 10  # below the lowest-loss learning rate


def test_valley_ignores_a_noisy_dip_before_the_real_descent() -> None:
    lrs = np.logspace(-6, 0, 61)
    losses = np.full(61, 2.0)
    losses[5] = 1.7  # one noisy dip on the plateau, below the halfway level of 1.75
    losses[40:56] = np.linspace(2.0, 1.5, 16)  # the real descent, 1e-2 to 2.5e-1
    losses[56:] = 3.0  # divergence
    picked = valley(lrs, losses)
    assert lrs[40] < picked < lrs[55]
    assert losses[list(lrs).index(picked)] <= 1.75


@pytest.mark.parametrize("seed", [0, 3])  # seed 3: fastai's rule stopped after 2 batches
def test_a_trained_model_whose_loss_is_near_zero_gets_a_whole_sweep(seed: int) -> None:
    set_seed(seed)
    x = torch.randn(1088, 8)
    y = (x[:, 0] > 0).long()  # separable: the model gets its loss near zero ...
    flipped = torch.randperm(1024)[:12]
    y[flipped] = 1 - y[flipped]  # ... but many times higher in a batch with a flipped label
    dls = DataLoaders.from_tensors((x[:1024], y[:1024]), (x[1024:], y[1024:]), bs=32, device="cpu")
    learn = Learner(dls, nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 2)))
    learn.progress.show = False
    learn.fit_one_cycle(8, 3e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "too short" warning
        found = learn.lr_find(show_plot=False)
    n_recorded = len(learn.recorder.lrs)  # 2 batches and 1e-8 for every suggestion before
    assert n_recorded > 50, n_recorded
    assert max(learn.recorder.lrs) > 1e-2  # the sweep covers the useful range
    assert all(1e-8 < lr < 10 for lr in found.as_dict().values())
    losses = learn.recorder.smooth_losses
    assert n_recorded == 100 or losses[-1] > 4 * min(losses)  # ran on until it diverged


def test_a_sweep_too_short_to_suggest_anything_warns() -> None:
    learn = make_learner()
    with pytest.warns(UserWarning, match=r"stopped after 6 batch\(es\).*too few to suggest"):
        learn.lr_find(num_it=6, show_plot=False)


def test_a_flat_then_rising_sweep_suggests_a_tenth_of_where_the_loss_rises() -> None:
    # a trained, unfrozen model: the loss is flat (with noise) until the rate is too high
    lrs = np.logspace(-7, 1, 80)
    rng = np.random.default_rng(0)
    losses = 0.2 + 0.002 * rng.standard_normal(80)
    losses[0] = 0.18  # the lowest point is the first: no descent at all
    losses[50:] = 0.2 * np.exp(np.linspace(0, 3, 30))  # rises from lrs[50] (about 1e-2)
    edge = lrs[int(np.argmax(losses > 1.25 * 0.18))]  # a quarter above the lowest
    for suggest in (valley, slide, steep):
        assert suggest(lrs, losses) == pytest.approx(edge / 10), suggest.__name__
    descending = np.linspace(2.0, 0.5, 80)  # a real descent keeps the usual rules
    assert valley(lrs, descending) >= lrs[40]  # halfway down


def test_the_default_suggestion_is_the_valley_or_from_scratch_the_slide() -> None:
    found = SuggestedLRs(valley=1e-3, minimum=2e-2, steep=5e-4, slide=3e-2)
    assert found.default() == 1e-3
    assert found.default(from_scratch=True) == 3e-2
    assert SuggestedLRs(minimum=4e-3).default() == 4e-3  # only what was asked for
    assert SuggestedLRs().default(from_scratch=True) == 1e-3
