"""Weight averaging: EMA follows its formula step by step, validates and ends with the
average, and resumes exactly; SWA averages the right epochs and recomputes batch norm."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from mentor.callbacks.averaging import EMA, SWA, averaged_entries, update_bn
from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders
from mentor.train import Callback, CancelFit, Learner
from mentor.train.checkpoint import load_file

State = dict[str, torch.Tensor]


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    """96 items, the same whatever the global seed: the first 64 train, the rest validate."""
    x = torch.randn(96, 6, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


def make_learner(path: Path, seed: int = 0, n_train: int = 64, bs: int = 16) -> Learner:
    """A linear / batch-norm / linear classifier; the weights depend on `seed`, not the data."""
    x, y = make_data()
    set_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    dls = DataLoaders.from_tensors((x[:n_train], y[:n_train]), (x[64:], y[64:]), bs=bs)
    learn = Learner(dls, model, path=path)
    learn.progress.show = False
    return learn


def snapshot(model: nn.Module) -> State:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def same(a: State, b: State) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Probe(Callback):
    """Copies of the model's weights at several events (runs after EMA and SWA)."""

    order = 68

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[State] = []
        self.trained: list[State] = []
        self.validated: list[State] = []
        self.train_starts: list[State] = []
        self.rng_before_after_fit: torch.Tensor | None = None

    def before_fit(self) -> None:
        self.steps.append(snapshot(self.learn.model))

    def after_step(self) -> None:
        self.steps.append(snapshot(self.learn.model))

    def before_train(self) -> None:
        self.train_starts.append(snapshot(self.learn.model))

    def after_train(self) -> None:
        self.trained.append(snapshot(self.learn.model))

    def before_validate(self) -> None:
        self.validated.append(snapshot(self.learn.model))


class StopAt(Callback):
    """Stops the fit after the checkpoint callback (70) has written its file."""

    order = 80

    def __init__(self, train_iter: int | None = None, epoch: int | None = None) -> None:
        super().__init__()
        self.train_iter, self.epoch = train_iter, epoch

    def after_batch(self) -> None:
        if self.learn.training and self.learn.train_iter == self.train_iter:
            raise CancelFit()

    def after_epoch(self) -> None:
        if self.learn.epoch == self.epoch:
            raise CancelFit()


@pytest.mark.parametrize(("warmup", "decay"), [(True, 0.999), (False, 0.9)])
def test_ema_follows_the_formula_for_three_steps(
    tmp_path: Path, warmup: bool, decay: float
) -> None:
    learn = make_learner(tmp_path, n_train=48)  # 3 batches: 3 optimizer steps
    ema = EMA(decay=decay, warmup=warmup, validate_with_ema=False, use_at_end=False)
    probe = Probe()
    learn.fit(1, 1e-2, cbs=[ema, probe])
    assert ema.n_updates == 3 and len(probe.steps) == 4  # the start, then after each step
    names = list(averaged_entries(learn.model, with_buffers=True))
    assert "1.running_mean" in names and "1.num_batches_tracked" not in names
    averaged = ema.averaged_weights()
    for name in names:
        expected = probe.steps[0][name]
        for t in range(3):
            d = min(decay, (1 + t) / (10 + t)) if warmup else decay
            expected = d * expected + (1 - d) * probe.steps[t + 1][name]
        torch.testing.assert_close(averaged[name], expected, rtol=1e-6, atol=1e-7)
        assert not torch.allclose(expected, probe.steps[3][name]), name  # it is an average
    assert torch.equal(averaged["1.num_batches_tracked"], torch.tensor(3))
    assert same(snapshot(learn.model), probe.steps[3])  # use_at_end=False: training weights


def test_validation_uses_the_average_and_training_goes_on_from_its_weights(
    tmp_path: Path,
) -> None:
    learn = make_learner(tmp_path)
    ema, probe = EMA(decay=0.9), Probe()
    averages: list[State] = []

    class Averages(Callback):
        order = 69

        def before_validate(self) -> None:
            averages.append(ema.averaged_weights())

    learn.fit(3, 1e-2, cbs=[ema, probe, Averages()])
    for epoch in range(3):
        assert same(probe.validated[epoch], averages[epoch]), epoch
        assert not same(probe.validated[epoch], probe.trained[epoch])
    for epoch in (1, 2):  # each epoch trains on from the previous epoch's training weights
        assert same(probe.train_starts[epoch], probe.trained[epoch - 1])
    assert same(snapshot(learn.model), averages[-1])  # use_at_end
    last = learn.recorder.values[-1]["valid_loss"]
    assert learn.validate()["valid_loss"] == pytest.approx(last, rel=1e-6)


@pytest.mark.parametrize("use_at_end", [True, False])
def test_use_at_end_switches_what_the_model_keeps(tmp_path: Path, use_at_end: bool) -> None:
    learn = make_learner(tmp_path)
    ema, probe = EMA(decay=0.9, use_at_end=use_at_end), Probe()
    learn.add_cbs([ema, probe])  # attached to the learner: they also see learn.validate()
    learn.fit(2, 1e-2)
    assert not same(ema.averaged_weights(), probe.trained[-1])
    kept = snapshot(learn.model)
    assert same(kept, ema.averaged_weights()) == use_at_end
    assert same(kept, probe.trained[-1]) != use_at_end
    # learn.validate() after the fit measures the average and leaves the model as it was
    assert learn.validate()["valid_loss"] == pytest.approx(
        learn.recorder.values[-1]["valid_loss"], rel=1e-6
    )
    assert same(snapshot(learn.model), kept)


def test_validate_with_ema_false_validates_the_training_weights(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    probe = Probe()
    learn.fit(2, 1e-2, cbs=[EMA(decay=0.9, validate_with_ema=False), probe])
    for trained, validated in zip(probe.trained, probe.validated):
        assert same(trained, validated)


def test_ema_decay_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"decay=1\.0.*\[0, 1\)"):
        EMA(decay=1.0)


def fit_stopped_and_resumed(
    tmp_path: Path, make_cb: Callable[[], Callback], every: str | int, stop: StopAt
) -> tuple[Learner, Callback, Learner, Callback]:
    """An uninterrupted 3-epoch one-cycle fit, and the same fit stopped by `stop` and resumed
    from its checkpoint by a learner with other weights and generator states."""
    full_cb, stopped_cb, resumed_cb = make_cb(), make_cb(), make_cb()
    full = make_learner(tmp_path / "full")
    full.fit_one_cycle(3, 1e-2, cbs=[full_cb])
    stopped = make_learner(tmp_path / "run")
    stopped.fit_one_cycle(3, 1e-2, cbs=[stopped_cb, stop], checkpoint_every=every)
    resumed = make_learner(tmp_path / "run", seed=123)
    checkpoint = tmp_path / "run" / "models" / "checkpoint.pt"
    resumed.fit_one_cycle(3, 1e-2, cbs=[resumed_cb], resume_from=checkpoint)
    return full, full_cb, resumed, resumed_cb


@pytest.mark.parametrize(
    ("every", "stop", "swapped"),
    [("epoch", StopAt(epoch=0), True), (3, StopAt(train_iter=6), False)],
    ids=["epoch_end", "mid_epoch"],
)
def test_ema_resumes_exactly(tmp_path: Path, every: str | int, stop: StopAt, swapped: bool) -> None:
    full, full_ema, resumed, resumed_ema = fit_stopped_and_resumed(
        tmp_path, lambda: EMA(decay=0.9, use_at_end=False), every, stop
    )
    saved = load_file(tmp_path / "run" / "models" / "checkpoint.pt")["callbacks"]["ema"]
    assert saved["n_updates"] == (4 if swapped else 6)
    assert ("training" in saved) == swapped  # at the epoch's end the model holds the average
    assert isinstance(full_ema, EMA) and isinstance(resumed_ema, EMA)
    assert resumed_ema.n_updates == full_ema.n_updates == 12
    assert same(resumed_ema.averaged_weights(), full_ema.averaged_weights())
    assert same(snapshot(resumed.model), snapshot(full.model))
    assert rows(resumed) == rows(full)


def rows(learn: Learner) -> list[dict[str, float]]:
    """The epoch table without its times."""
    return [{k: v for k, v in row.items() if k != "time"} for row in learn.recorder.values]


def test_swa_averages_the_epochs_from_start_epoch_and_recomputes_batch_norm(
    tmp_path: Path,
) -> None:
    learn = make_learner(tmp_path, bs=64)  # one batch per epoch: the statistics are exact
    probe = Probe()

    class RngAtEnd(Callback):
        order = 66  # before SWA's after_fit

        def after_fit(self) -> None:
            probe.rng_before_after_fit = torch.get_rng_state()

    swa = SWA(start_epoch=2)
    learn.fit(4, 1e-2, cbs=[swa, probe, RngAtEnd()])
    assert swa.n_averaged == 2
    model = learn.model
    assert isinstance(model, nn.Sequential)
    for name, _ in model.named_parameters():
        expected = (probe.trained[2][name] + probe.trained[3][name]) / 2
        torch.testing.assert_close(model.state_dict()[name], expected, rtol=1e-6, atol=1e-7)
        assert not torch.allclose(expected, probe.trained[3][name])
    # batch norm: the statistics of the averaged first layer's outputs on the training batch
    x_train = make_data()[0][:64]
    with torch.no_grad():
        hidden = model[0](x_train)
    norm = model[1]
    assert isinstance(norm, nn.BatchNorm1d)
    torch.testing.assert_close(norm.running_mean, hidden.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(norm.running_var, hidden.var(0), rtol=1e-5, atol=1e-6)
    assert norm.momentum == 0.1 and norm.num_batches_tracked is not None
    assert int(norm.num_batches_tracked) == 1
    assert probe.rng_before_after_fit is not None
    assert torch.equal(torch.get_rng_state(), probe.rng_before_after_fit)  # the pass left no trace


def test_swa_defaults_to_the_last_quarter_of_the_epochs(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    probe, swa = Probe(), SWA(update_bn=False)
    learn.fit(4, 1e-2, cbs=[swa, probe])
    assert (swa.first_epoch, swa.n_averaged) == (3, 1)
    assert same(snapshot(learn.model), probe.trained[3])
    learn.fit(8, 1e-2, cbs=[swa])
    assert (swa.first_epoch, swa.n_averaged) == (6, 2)


def test_swa_start_epoch_past_the_fit_is_refused(tmp_path: Path) -> None:
    learn = make_learner(tmp_path)
    with pytest.raises(ValueError, match=r"start_epoch=5.*4 epochs"):
        learn.fit(4, 1e-2, cbs=[SWA(start_epoch=5)])


@pytest.mark.parametrize(
    ("every", "stop"), [("epoch", StopAt(epoch=1)), (3, StopAt(train_iter=9))],
    ids=["epoch_end", "mid_epoch"],
)  # fmt: skip
def test_swa_resumes_exactly(tmp_path: Path, every: str | int, stop: StopAt) -> None:
    full, full_swa, resumed, resumed_swa = fit_stopped_and_resumed(
        tmp_path, lambda: SWA(start_epoch=1), every, stop
    )
    assert isinstance(full_swa, SWA) and isinstance(resumed_swa, SWA)
    assert resumed_swa.n_averaged == full_swa.n_averaged == 2
    assert same(snapshot(resumed.model), snapshot(full.model))


def test_update_bn_without_batch_norm_does_nothing() -> None:
    model = nn.Sequential(nn.Linear(3, 2))
    before = copy.deepcopy(model.state_dict())
    assert update_bn(model, [(torch.randn(4, 3), torch.zeros(4))]) is False
    assert same(model.state_dict(), before)


def test_a_learning_rate_sweep_leaves_ema_and_swa_alone(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    learn = make_learner(tmp_path)
    ema, swa = EMA(decay=0.9), SWA(start_epoch=5)  # past the sweep's 3 epochs: not checked
    learn.add_cbs([ema, swa])
    before = snapshot(learn.model)
    learn.lr_find(num_it=10, show_plot=False)
    assert same(snapshot(learn.model), before)
    assert ema.n_updates == 0 and not ema.averaged and swa.n_averaged == 0
    assert not [w for w in recwarn if "SWA" in str(w.message)]
    learn.fit(6, 1e-2)
    assert ema.n_updates == 24 and swa.n_averaged == 1
