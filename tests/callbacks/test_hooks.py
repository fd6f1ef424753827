"""Hooks on modules (outputs and gradients) and the ActivationStats callback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mentor.callbacks import ActivationStats, Hook, Hooks, hook_output, hook_outputs
from mentor.callbacks.activation_plots import histogram, histogram_by_sorting
from mentor.core.seed import set_seed
from mentor.data.loaders import TensorLoader
from mentor.train import Learner


def mlp() -> nn.Sequential:
    set_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))


def test_hook_output_keeps_the_detached_output_and_is_removed_on_exit() -> None:
    model = mlp()
    x = torch.randn(4, 5)
    with hook_output(model[0]) as hook:
        assert isinstance(hook, Hook) and hook.stored is None
        model(x)
        assert len(model[0]._forward_hooks) == 1
    assert hook.stored.shape == (4, 8)
    assert not hook.stored.requires_grad
    torch.testing.assert_close(hook.stored, model[0](x).detach())
    assert len(model[0]._forward_hooks) == 0
    hook.remove()  # a second remove is harmless


def test_hook_output_without_detach_keeps_the_graph() -> None:
    model = mlp()
    with hook_output(model[0], detach=False) as hook:
        out = model(torch.randn(3, 5))
    assert hook.stored.requires_grad
    (grad,) = torch.autograd.grad(out.sum(), hook.stored)
    assert grad.shape == (3, 8)


def test_hook_output_with_grad_keeps_the_gradient_of_the_output() -> None:
    model = mlp()
    for p in model[0].parameters():
        p.requires_grad_(False)  # frozen: the output still gets a gradient through the input
    x = torch.randn(6, 5, requires_grad=True)
    with hook_output(model[2], grad=True) as hook:
        out = model(x)
        assert hook.stored is None  # filled in by backward
        (out * torch.tensor([2.0, -3.0])).sum().backward()
    assert hook.stored.shape == (6, 2)
    torch.testing.assert_close(hook.stored, torch.tensor([[2.0, -3.0]]).expand(6, 2))
    assert len(model[2]._forward_hooks) == 0


def test_grad_hook_on_a_module_returning_a_tuple_says_what_to_do() -> None:
    lstm = nn.LSTM(3, 4, batch_first=True)
    with hook_output(lstm, grad=True), pytest.raises(TypeError, match="returned tuple"):
        lstm(torch.randn(2, 5, 3))


def test_hooks_store_one_value_per_module_and_are_all_removed() -> None:
    model = mlp()
    with hook_outputs([model[0], model[1], model[2]]) as hooks:
        assert isinstance(hooks, Hooks) and len(hooks) == 3
        model(torch.randn(7, 5))
    assert [tuple(value.shape) for value in hooks.stored] == [(7, 8), (7, 8), (7, 2)]
    assert (hooks[1].stored >= 0).all()  # the ReLU's output
    assert all(len(m._forward_hooks) == 0 for m in model)


def ordered_learner(x: torch.Tensor, y: torch.Tensor) -> Learner:
    """A learner on unshuffled batches of 16, so each batch is known."""
    train = TensorLoader(x[:64], y[:64], bs=16)
    valid = TensorLoader(x[64:], y[64:], bs=16)
    learn = Learner((train, valid), mlp(), loss_func=nn.CrossEntropyLoss())
    learn.progress.show = False
    return learn


def test_activation_stats_records_mean_std_and_near_zero_per_training_batch() -> None:
    set_seed(1)
    x, y = torch.randn(96, 5), torch.randint(0, 2, (96,))
    learn = ordered_learner(x, y)
    for p in learn.model[0].parameters():
        p.requires_grad_(False)  # frozen, so the first layer's outputs stay known
    stats_cb = ActivationStats(eps=0.1)
    learn.fit(1, lr=1e-2, cbs=[stats_cb])
    stats = stats_cb.stats
    assert stats_cb.names == ["0", "2"]  # the two linear layers, by default
    assert stats.mean.shape == stats.std.shape == stats.near_zero.shape == (4, 2)  # no valid
    with torch.no_grad():
        for batch in range(4):
            out = learn.model[0](x[batch * 16 : (batch + 1) * 16])
            assert stats.mean[batch, 0].item() == pytest.approx(out.mean().item(), abs=1e-6)
            assert stats.std[batch, 0].item() == pytest.approx(out.std().item(), abs=1e-6)
            share = (out.abs() <= 0.1).float().mean().item()
            assert stats.near_zero[batch, 0].item() == pytest.approx(share)
    assert all(len(m._forward_hooks) == 0 for m in learn.model.modules())


def test_activation_stats_on_chosen_modules_restarts_with_each_fit(tmp_path: Path) -> None:
    set_seed(2)
    learn = ordered_learner(torch.randn(96, 5), torch.randint(0, 2, (96,)))
    stats_cb = ActivationStats(modules=[learn.model[1]], eps=0.0)
    with pytest.raises(ValueError, match="recorded nothing"):
        stats_cb.plot_layer_stats()
    learn.fit(2, lr=1e-2, cbs=[stats_cb])
    assert stats_cb.stats.near_zero.shape == (8, 1)
    assert ((stats_cb.stats.near_zero > 0) & (stats_cb.stats.near_zero < 1)).all()  # ReLU zeros
    learn.fit(1, lr=1e-2, cbs=[stats_cb])
    assert stats_cb.stats.mean.shape == (4, 1)
    fname = tmp_path / "layer_stats.png"
    stats_cb.plot_layer_stats(fname=fname)
    assert fname.stat().st_size > 0


def test_activation_stats_without_watchable_layers_asks_for_modules() -> None:
    train = TensorLoader(torch.randn(8, 3), torch.randn(8, 3), bs=4)
    learn = Learner((train, None), nn.Sequential(nn.BatchNorm1d(3)), loss_func=nn.MSELoss())
    learn.progress.show = False
    with pytest.raises(ValueError, match="modules="):
        learn.fit(1, cbs=[ActivationStats()])
    with pytest.raises(ValueError, match="eps=-1"):
        ActivationStats(eps=-1)


def test_activation_stats_histograms_count_each_batch_in_range() -> None:
    set_seed(3)
    x, y = torch.randn(96, 5) * 3, torch.randint(0, 2, (96,))
    learn = ordered_learner(x, y)
    for p in learn.model[0].parameters():
        p.requires_grad_(False)  # frozen, so the first layer's outputs stay known
    stats_cb = ActivationStats(n_bins=10, hist_range=(-2.0, 3.0))
    learn.fit(1, lr=1e-2, cbs=[stats_cb])
    hist = stats_cb.hist
    assert hist.shape == (4, 2, 10)  # [n_batches, n_layers, n_bins]
    with torch.no_grad():
        for batch in range(4):
            out = learn.model[0](x[batch * 16 : (batch + 1) * 16])
            in_range = ((out >= -2) & (out <= 3)).sum().item()
            assert 0 < in_range < out.numel()  # some values fall outside: not counted
            assert hist[batch, 0].sum().item() == in_range
            first_bin = ((out >= -2) & (out < -1.5)).sum().item()
            assert hist[batch, 0, 0].item() == first_bin
    assert hist[:, 1].sum(-1).max().item() <= 16 * 2  # the second layer: 2 outputs per item
    image = stats_cb.color_dim("2")
    assert image.shape == (10, 4)  # [n_bins, n_batches]
    torch.testing.assert_close(image, hist[:, 1].t().log1p())
    torch.testing.assert_close(stats_cb.color_dim(0), stats_cb.color_dim("0"))
    low = stats_cb.low_share(n_low=3)
    assert low.shape == (4, 2)
    torch.testing.assert_close(low[:, 0], hist[:, 0, :3].sum(-1) / hist[:, 0].sum(-1))


def test_activation_stats_low_bins_show_dead_relus(tmp_path: Path) -> None:
    set_seed(4)
    learn = ordered_learner(torch.randn(96, 5), torch.randint(0, 2, (96,)))
    with torch.no_grad():
        learn.model[0].bias.fill_(-100.0)  # every unit of the ReLU is dead
    stats_cb = ActivationStats(modules=[learn.model[1]], hist_range=(0.0, 10.0))
    learn.fit(1, lr=1e-3, cbs=[stats_cb])
    assert torch.equal(stats_cb.low_share(), torch.ones(4, 1))
    fname = tmp_path / "color_dim.png"
    fig = stats_cb.plot_color_dim(fname=fname)
    assert fname.stat().st_size > 0 and len(fig.axes) == 2  # the image and the low share
    with pytest.raises(ValueError, match="no watched layer 'head'"):
        stats_cb.color_dim("head")
    with pytest.raises(ValueError, match="n_low=41"):
        stats_cb.low_share(n_low=41)


def test_activation_stats_without_histograms_and_bad_ranges() -> None:
    set_seed(5)
    learn = ordered_learner(torch.randn(96, 5), torch.randint(0, 2, (96,)))
    stats_cb = ActivationStats(with_hist=False)
    with pytest.raises(ValueError, match="recorded nothing"):
        stats_cb.plot_color_dim()
    learn.fit(1, lr=1e-2, cbs=[stats_cb])
    assert stats_cb.stats.mean.shape == (4, 2)
    with pytest.raises(ValueError, match="with_hist=True"):
        _ = stats_cb.hist
    with pytest.raises(ValueError, match=r"hist_range=\(3.0, 1.0\)"):
        ActivationStats(hist_range=(3.0, 1.0))
    with pytest.raises(ValueError, match="n_bins=0"):
        ActivationStats(n_bins=0)


def test_histogram_by_sorting_counts_as_histc() -> None:
    set_seed(6)
    values = torch.cat([torch.randn(5000) * 4, torch.tensor([-7.0, 7.0, 7.5, -9.0])])
    expected = torch.histc(values, 40, -7, 7)
    torch.testing.assert_close(histogram_by_sorting(values, 40, -7, 7), expected)
    torch.testing.assert_close(histogram(values, 40, -7, 7), expected)
    assert expected.sum().item() == ((values >= -7) & (values <= 7)).sum().item()
