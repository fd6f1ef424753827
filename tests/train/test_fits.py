"""The fits built on schedules, checked batch by batch against the schedule formulas written out
here by hand, and the freezing they rely on."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mentor.data.loaders import DataLoaders
from mentor.optim import get_hyper
from mentor.train import Callback, CrossEntropyLossFlat, Learner


def cos_between(start: float, end: float, pos: float) -> float:
    """Half-cosine from start (pos 0) to end (pos 1)."""
    return start + (1 - math.cos(math.pi * pos)) / 2 * (end - start)


def make_dls(n_train: int, bs: int, n_valid: int = 16) -> DataLoaders:
    gen = torch.Generator().manual_seed(0)
    proj = torch.randn(4, 3, generator=gen)
    x = torch.randn(n_train + n_valid, 4, generator=gen) * 2 + 1
    y = (x @ proj).argmax(1)
    train, valid = (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])
    return DataLoaders.from_tensors(train, valid, bs=bs, device="cpu")


def three_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    return [list(model[0].parameters()), list(model[2].parameters()), list(model[4].parameters())]


def make_learner(n_train: int = 80, bs: int = 8, model: nn.Module | None = None, **kwargs):
    torch.manual_seed(0)
    model = model if model is not None else nn.Linear(4, 3)
    learn = Learner(make_dls(n_train, bs), model, loss_func=CrossEntropyLossFlat(), **kwargs)
    learn.progress.show = False
    return learn


def three_group_learner(**kwargs) -> Learner:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    return make_learner(model=model, splitter=three_groups, **kwargs)


class GroupLrs(Callback):
    """The learning rate of every layer group at every training batch (after the scheduler)."""

    order = 20
    run_valid = False

    def __init__(self) -> None:
        super().__init__()
        self.lrs: list[list[float]] = []

    def before_batch(self) -> None:
        self.lrs.append(get_hyper(self.learn.opt, "lr"))


# ----- one-cycle -----
def test_fit_one_cycle_lr_and_momentum_follow_the_schedule() -> None:
    learn = make_learner()  # 80 items in batches of 8: 10 batches per epoch
    lr_max, div, div_final, pct_start = 1e-2, 25.0, 1e5, 0.25
    learn.fit_one_cycle(2, lr_max)
    lrs, moms = learn.recorder.lrs, learn.recorder.moms
    total = 20
    assert len(lrs) == len(moms) == total
    peak = int(pct_start * total)  # batch 5 sits exactly at pos 0.25

    assert lrs[0] == pytest.approx(lr_max / div, rel=1e-12)
    assert max(lrs) == pytest.approx(lr_max, rel=1e-12)
    assert lrs.index(max(lrs)) == peak
    # the last batch runs at pos 19/20, not 1: the lr there is still ~1.1% of lr_max, far above
    # lr_max / div_final, which only pos = 1 reaches
    last_pos = ((total - 1) / total - pct_start) / (1 - pct_start)
    expected_last = cos_between(lr_max, lr_max / div_final, last_pos)
    assert lrs[-1] == pytest.approx(expected_last, rel=1e-9)
    assert 0.01 * lr_max < lrs[-1] < 0.012 * lr_max
    # every batch, warm-up then annealing
    for index, lr in enumerate(lrs):
        pos = index / total
        if pos < pct_start:
            expected = cos_between(lr_max / div, lr_max, pos / pct_start)
        else:
            expected = cos_between(lr_max, lr_max / div_final, (pos - pct_start) / (1 - pct_start))
        assert lr == pytest.approx(expected, rel=1e-9), index
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1 : peak + 1]))
    assert all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))

    # momentum (Adam's beta1) moves the other way: 0.95 -> 0.85 at the peak -> back to ~0.95
    assert moms[0] == pytest.approx(0.95, abs=1e-12)
    assert moms[peak] == pytest.approx(0.85, abs=1e-12)
    assert min(moms) == moms[peak]
    assert moms[-1] == pytest.approx(cos_between(0.85, 0.95, last_pos), abs=1e-12)
    assert moms[-1] == pytest.approx(0.95, abs=2e-3)
    assert learn.opt.param_groups[0]["betas"][1] == pytest.approx(0.99)


def test_fit_one_cycle_with_a_slice_peaks_at_each_groups_lr() -> None:
    learn = three_group_learner()
    recorded = GroupLrs()
    learn.fit_one_cycle(2, slice(1e-5, 1e-3), cbs=[recorded])
    per_group = list(zip(*recorded.lrs))
    assert len(recorded.lrs) == 20
    assert [max(group) for group in per_group] == pytest.approx([1e-5, 1e-4, 1e-3], rel=1e-9)
    assert recorded.lrs[0] == pytest.approx([1e-5 / 25, 1e-4 / 25, 1e-3 / 25], rel=1e-9)
    assert recorded.lrs[5] == pytest.approx([1e-5, 1e-4, 1e-3], rel=1e-9)
    # the recorder follows the last group (the head)
    assert learn.recorder.lrs == pytest.approx(list(per_group[-1]), rel=1e-12)


# ----- SGDR -----
def test_fit_sgdr_restarts_and_calls_on_cycle_end(tmp_path) -> None:
    learn = make_learner(n_train=32, path=tmp_path)  # 4 batches per epoch
    lr_max = 1e-2
    calls: list[tuple[int, int]] = []

    def snapshot(learner: Learner, cycle: int) -> None:
        calls.append((learner.epoch, cycle))
        learner.save(f"snapshot{cycle}")

    learn.fit_sgdr(3, 1, lr_max, cycle_mult=2, on_cycle_end=snapshot)
    lrs = learn.recorder.lrs
    assert len(learn.recorder.values) == 7
    assert len(lrs) == 28
    cycles = [(0, 4), (4, 12), (12, 28)]  # batches of epochs [0], [1, 2], [3..6]
    for start, end in cycles:
        assert lrs[start] == pytest.approx(lr_max, rel=1e-12), start
        cycle_lrs = lrs[start:end]
        assert min(cycle_lrs) == lrs[end - 1]
        assert all(a > b for a, b in zip(cycle_lrs, cycle_lrs[1:]))
        for index in range(start, end):
            expected = cos_between(lr_max, 0.0, (index - start) / (end - start))
            assert lrs[index] == pytest.approx(expected, rel=1e-9, abs=1e-15), index
    assert calls == [(0, 0), (2, 1), (6, 2)]
    files = [tmp_path / "models" / f"snapshot{cycle}.pth" for cycle in range(3)]
    assert all(file.exists() for file in files)
    last = torch.load(files[2], weights_only=True)["model"]
    first = torch.load(files[0], weights_only=True)["model"]
    assert torch.equal(last["weight"], learn.model.weight.detach())
    assert not torch.equal(first["weight"], last["weight"])


# ----- discriminative learning rates -----
def test_fit_with_slices_sets_one_lr_per_layer_group() -> None:
    learn = three_group_learner()
    learn.fit(1, slice(1e-3))
    assert get_hyper(learn.opt, "lr") == pytest.approx([1e-4, 1e-4, 1e-3], rel=1e-12)
    learn.fit(1, slice(1e-5, 1e-3))
    assert get_hyper(learn.opt, "lr") == pytest.approx([1e-5, 1e-4, 1e-3], rel=1e-12)
    # the no-weight-decay torch groups (biases) follow their layer group's lr
    expected = [1e-5, 1e-4, 1e-3]
    groups = learn.opt.param_groups
    assert len(groups) == 6
    for group in groups:
        assert group["lr"] == pytest.approx(expected[group["layer_group"]], rel=1e-12)


# ----- freezing -----
def bn_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def body_and_head(model: nn.Module) -> list[list[nn.Parameter]]:
    return [[*model[0].parameters(), *model[1].parameters()], list(model[3].parameters())]


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.state_dict().items()}


def changed(before: dict[str, torch.Tensor], model: nn.Module) -> set[str]:
    return {key for key, value in model.state_dict().items() if not torch.equal(value, before[key])}


BODY_LINEAR = {"0.weight", "0.bias"}
BN_PARAMS = {"1.weight", "1.bias"}
BN_STATS = {"1.running_mean", "1.running_var", "1.num_batches_tracked"}
HEAD = {"3.weight", "3.bias"}


def test_freeze_keeps_frozen_weights_but_trains_batchnorm() -> None:
    learn = make_learner(model=bn_model(), splitter=body_and_head)
    learn.freeze()
    before = state_copy(learn.model)
    learn.fit(1, 1e-2)
    assert changed(before, learn.model) == BN_PARAMS | BN_STATS | HEAD


def test_freeze_with_bn_freeze_keeps_running_statistics() -> None:
    learn = make_learner(model=bn_model(), splitter=body_and_head)
    learn.freeze_to(1, bn_freeze=True)
    before = state_copy(learn.model)
    learn.fit(1, 1e-2)
    assert changed(before, learn.model) == BN_PARAMS | HEAD
    # unfreezing trains everything again, running statistics included
    learn.unfreeze()
    assert all(p.requires_grad for p in learn.model.parameters())
    before = state_copy(learn.model)
    learn.fit(1, 1e-2)
    assert changed(before, learn.model) == BODY_LINEAR | BN_PARAMS | BN_STATS | HEAD


def test_freeze_without_train_bn_freezes_batchnorm_weights_too() -> None:
    learn = make_learner(model=bn_model(), splitter=body_and_head, train_bn=False)
    learn.freeze()
    before = state_copy(learn.model)
    learn.fit(1, 1e-2)
    # running statistics still move (the layer is in train mode); its weights don't
    assert changed(before, learn.model) == BN_STATS | HEAD


# ----- fine_tune -----
class PerFit(Callback):
    """What each fit did: its epochs, the body weights after it, the lrs of its batches."""

    order = 20

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []
        self.body_after: list[torch.Tensor] = []
        self.lrs: list[list[list[float]]] = []
        self.frozen: list[bool] = []

    def before_fit(self) -> None:
        self.epochs.append(0)
        self.lrs.append([])
        self.frozen.append(not self.learn.model[0].weight.requires_grad)

    def before_batch(self) -> None:
        if self.learn.training:
            self.lrs[-1].append(get_hyper(self.learn.opt, "lr"))

    def after_epoch(self) -> None:
        self.epochs[-1] += 1

    def after_fit(self) -> None:
        self.body_after.append(self.learn.model[0].weight.detach().clone())


def test_fine_tune_trains_the_head_first_then_everything() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    def splitter(m: nn.Module) -> list[list[nn.Parameter]]:
        return [list(m[0].parameters()), list(m[2].parameters())]

    per_fit = PerFit()
    learn = make_learner(model=model, splitter=splitter, cbs=[per_fit])
    body_start = model[0].weight.detach().clone()
    head_start = model[2].weight.detach().clone()
    base_lr = 1e-2
    learn.fine_tune(2, base_lr, freeze_epochs=1)

    assert per_fit.epochs == [1, 2]
    assert per_fit.frozen == [True, False]
    assert torch.equal(per_fit.body_after[0], body_start)
    assert not torch.equal(per_fit.body_after[1], body_start)
    assert not torch.equal(model[2].weight, head_start)
    assert all(p.requires_grad for p in model.parameters())
    # head-only phase peaks at base_lr; then discriminative lrs base_lr/2/100 .. base_lr/2
    frozen_phase, full_phase = per_fit.lrs
    assert len(frozen_phase) == 10 and len(full_phase) == 20
    # the head-only phase warms up over 99% of its 10 batches: its last batch (pos 0.9) is
    # still on the way up from base_lr / 25 to base_lr
    head_lrs = [lrs[-1] for lrs in frozen_phase]
    assert head_lrs[0] == pytest.approx(base_lr / 25, rel=1e-9)
    assert head_lrs[-1] == pytest.approx(cos_between(base_lr / 25, base_lr, 0.9 / 0.99), rel=1e-9)
    assert all(a < b for a, b in zip(head_lrs, head_lrs[1:]))
    assert frozen_phase[0][0] == pytest.approx(base_lr / 10 / 25, rel=1e-9)
    peaks = [max(group) for group in zip(*full_phase)]
    assert peaks == pytest.approx([base_lr / 2 / 100, base_lr / 2], rel=1e-9)
    assert full_phase[0] == pytest.approx([base_lr / 2 / 100 / 5, base_lr / 2 / 5], rel=1e-9)


# ----- flat-cos -----
def test_fit_flat_cos_is_flat_then_anneals() -> None:
    learn = make_learner()
    lr = 1e-2
    learn.fit_flat_cos(2, lr)
    lrs = learn.recorder.lrs
    total = 20
    assert len(lrs) == total
    flat = int(0.75 * total)
    # batches 0..14 are in the flat part, batch 15 starts the cosine at lr itself
    assert lrs[: flat + 1] == [pytest.approx(lr, rel=1e-12)] * (flat + 1)
    tail = lrs[flat:]
    assert all(a > b for a, b in zip(tail, tail[1:]))
    for index in range(flat, total):
        expected = cos_between(lr, 0.0, (index / total - 0.75) / 0.25)
        assert lrs[index] == pytest.approx(expected, rel=1e-9), index
    # the last batch (pos 0.95) is 80% down the cosine: (1 + cos(0.8 pi)) / 2 = 0.095 of lr
    assert 0.09 * lr < lrs[-1] < 0.1 * lr


@pytest.mark.parametrize(("epochs", "freeze_epochs", "fits"), [(0, 1, [True]), (2, 0, [False])])
def test_fine_tune_leaves_out_a_fit_of_no_epochs(
    epochs: int, freeze_epochs: int, fits: list[bool]
) -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    def splitter(m: nn.Module) -> list[list[nn.Parameter]]:
        return [list(m[0].parameters()), list(m[2].parameters())]

    per_fit = PerFit()
    learn = make_learner(model=model, splitter=splitter, cbs=[per_fit])
    learn.fine_tune(epochs, 1e-2, freeze_epochs=freeze_epochs)
    assert per_fit.frozen == fits and len(learn.recorder.fits) == len(fits)


class PlainStep(torch.optim.Optimizer):
    """An optimizer of a user's own, without momentum (lesson 5 writes one)."""

    def __init__(self, params, lr: float = 0.1) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 (torch's signature)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])


def test_fit_one_cycle_skips_the_default_momentum_for_an_optimizer_without_one() -> None:
    learn = make_learner(opt_func=PlainStep)
    before = [p.clone() for p in learn.model.parameters()]
    learn.fit_one_cycle(1, 0.1)  # a ValueError about 'mom' before
    assert any(not torch.equal(a, b) for a, b in zip(before, learn.model.parameters()))
    with pytest.raises(ValueError, match="PlainStep has no hyper-parameter 'mom'"):
        learn.fit_one_cycle(1, 0.1, moms=(0.9, 0.8, 0.9))  # asked for: still an error
