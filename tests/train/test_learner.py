"""The Learner on tiny generated problems: data forms, fit, validate, predictions, persistence,
the recorder, the order of events and cancellation, and the progress output."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mentor.data.loaders import DataLoaders, TensorLoader
from mentor.train import (
    EVENTS,
    Callback,
    CancelBatch,
    CancelEpoch,
    CancelFit,
    CrossEntropyLossFlat,
    Learner,
    accuracy,
)

N_FEATURES, N_CLASSES = 4, 3
TRAIN_BATCH = [
    "before_batch",
    "after_pred",
    "after_loss",
    "before_backward",
    "before_step",
    "after_step",
    "after_batch",
]
VALID_BATCH = ["before_batch", "after_pred", "after_loss", "after_batch"]


def make_split(n_train: int = 128, n_valid: int = 50, seed: int = 0):
    """A linearly separable 3-class problem: the label is the argmax of a random projection."""
    gen = torch.Generator().manual_seed(seed)
    proj = torch.randn(N_FEATURES, N_CLASSES, generator=gen)
    x = torch.randn(n_train + n_valid, N_FEATURES, generator=gen)
    y = (x @ proj).argmax(1)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def make_learner(
    n_train: int = 128,
    n_valid: int = 50,
    bs: int = 16,
    valid_bs: int = 16,
    seed: int = 0,
    **kwargs,
) -> tuple[Learner, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)
    train, valid = make_split(n_train, n_valid)
    dls = DataLoaders.from_tensors(train, valid, bs=bs, valid_bs=valid_bs, device="cpu")
    kwargs.setdefault("loss_func", CrossEntropyLossFlat())
    learn = Learner(dls, nn.Linear(N_FEATURES, N_CLASSES), **kwargs)
    learn.progress.show = False
    return learn, valid


class EventLog(Callback):
    """Writes down every event it sees, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def before_fit(self) -> None:
        self.events.append("before_fit")

    def before_epoch(self) -> None:
        self.events.append("before_epoch")

    def before_train(self) -> None:
        self.events.append("before_train")

    def before_batch(self) -> None:
        self.events.append("before_batch")

    def after_pred(self) -> None:
        self.events.append("after_pred")

    def after_loss(self) -> None:
        self.events.append("after_loss")

    def before_backward(self) -> None:
        self.events.append("before_backward")

    def before_step(self) -> None:
        self.events.append("before_step")

    def after_step(self) -> None:
        self.events.append("after_step")

    def after_batch(self) -> None:
        self.events.append("after_batch")

    def after_train(self) -> None:
        self.events.append("after_train")

    def before_validate(self) -> None:
        self.events.append("before_validate")

    def after_validate(self) -> None:
        self.events.append("after_validate")

    def after_epoch(self) -> None:
        self.events.append("after_epoch")

    def after_fit(self) -> None:
        self.events.append("after_fit")


# ----- data forms and training -----
def test_fit_with_from_tensors_reduces_the_loss() -> None:
    learn, _ = make_learner(metrics=[accuracy])
    before = learn.validate()["valid_loss"]
    learn.fit(8, 3e-2)
    after = learn.recorder.values[-1]
    assert after["valid_loss"] < 0.5 * before
    assert after["accuracy"] > 0.85


def test_fit_with_plain_torch_dataloaders() -> None:
    torch.manual_seed(0)
    (x_train, y_train), (x_valid, y_valid) = make_split()
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=16, shuffle=True)
    valid = DataLoader(TensorDataset(x_valid, y_valid), batch_size=32)
    learn = Learner((train, valid), nn.Linear(N_FEATURES, N_CLASSES), metrics=[accuracy])
    learn.progress.show = False
    # integer targets: the learner infers cross-entropy by itself
    assert isinstance(learn.loss_func, CrossEntropyLossFlat)
    before = learn.validate()["valid_loss"]
    learn.fit(8, 3e-2)
    assert len(learn.recorder.values) == 8
    assert learn.recorder.values[-1]["valid_loss"] < 0.5 * before
    assert len(learn.recorder.lrs) == 8 * len(train)


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Linear(2, N_CLASSES)
        self.right = nn.Linear(2, N_CLASSES)
        self.calls = 0

    def forward(self, x_left: torch.Tensor, x_right: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.left(x_left) + self.right(x_right)


def test_fit_with_two_inputs_per_batch() -> None:
    torch.manual_seed(0)
    (x_train, y_train), (x_valid, y_valid) = make_split()
    dls = DataLoaders.from_tensors(
        (x_train[:, :2], x_train[:, 2:], y_train),
        (x_valid[:, :2], x_valid[:, 2:], y_valid),
        bs=16,
        device="cpu",
    )
    model = TwoInputs()
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=[accuracy])
    learn.progress.show = False
    before = learn.validate()["valid_loss"]
    learn.fit(8, 3e-2)
    assert learn.recorder.values[-1]["valid_loss"] < 0.5 * before
    preds, targets = learn.get_preds()
    assert preds.shape == (50, N_CLASSES) and torch.equal(targets, y_valid)
    with torch.no_grad():
        expected = torch.softmax(model(x_valid[:, :2], x_valid[:, 2:]), 1)
    torch.testing.assert_close(preds, expected)


# ----- validate, get_preds, predict -----
def test_validate_matches_a_manual_computation() -> None:
    # 50 valid items in batches of 16: the last batch has 2 items, so an unweighted mean of
    # batch losses would differ from the per-item mean
    learn, (x_valid, y_valid) = make_learner(metrics=[accuracy])
    learn.fit(2, 1e-2)
    result = learn.validate()
    with torch.no_grad():
        out = learn.model(x_valid)
    assert set(result) == {"valid_loss", "accuracy"}
    assert result["valid_loss"] == pytest.approx(F.cross_entropy(out, y_valid).item(), rel=1e-5)
    manual_acc = (out.argmax(1) == y_valid).float().mean().item()
    assert result["accuracy"] == pytest.approx(manual_acc, abs=1e-6)
    # on other data, given as a plain iterable of batches
    (x_train, y_train), _ = make_split()
    on_train = learn.validate(dl=TensorLoader(x_train, y_train, bs=48))
    with torch.no_grad():
        train_loss = F.cross_entropy(learn.model(x_train), y_train).item()
    assert on_train["valid_loss"] == pytest.approx(train_loss, rel=1e-5)


def test_get_preds_shapes_inputs_losses_and_raw_outputs() -> None:
    learn, (x_valid, y_valid) = make_learner()
    learn.fit(1, 1e-2)
    with torch.no_grad():
        raw = learn.model(x_valid)
    preds, targets = learn.get_preds()
    assert preds.shape == (50, N_CLASSES) and targets.shape == (50,)
    assert torch.equal(targets, y_valid)
    torch.testing.assert_close(preds, torch.softmax(raw, 1))
    torch.testing.assert_close(preds.sum(1), torch.ones(50))

    inputs, preds_2, targets_2 = learn.get_preds(with_input=True)
    assert torch.equal(inputs, x_valid)
    torch.testing.assert_close(preds_2, preds)
    assert torch.equal(targets_2, targets)

    preds_3, _, losses = learn.get_preds(with_loss=True)
    assert losses.shape == (50,)
    torch.testing.assert_close(losses, F.cross_entropy(raw, y_valid, reduction="none"))
    # the loss keeps its reduction for training afterwards
    assert learn.loss_func.reduction == "mean"

    raw_preds, _ = learn.get_preds(act=False)
    torch.testing.assert_close(raw_preds, raw)
    assert not torch.allclose(raw_preds.sum(1), torch.ones(50))


def test_predict_returns_the_argmax_class_and_probabilities() -> None:
    learn, (x_valid, _) = make_learner()
    learn.fit(2, 3e-2)
    for item in x_valid[:5]:
        label, index, probs = learn.predict(item)
        with torch.no_grad():
            expected = torch.softmax(learn.model(item[None]), 1)[0]
        assert probs.shape == (N_CLASSES,)
        assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
        torch.testing.assert_close(probs, expected)
        # plain loaders have no vocabulary: the decoded value is the class index itself
        assert int(label) == int(index) == int(expected.argmax())


# ----- persistence -----
def test_save_and_load_round_trip_weights_and_optimizer_state(tmp_path) -> None:
    learn, _ = make_learner(path=tmp_path)
    learn.fit(1, 1e-2)
    file = learn.save("stage1")
    assert file == tmp_path / "models" / "stage1.pth" and file.exists()
    saved_model = {k: v.clone() for k, v in learn.model.state_dict().items()}
    saved_opt = learn.opt.state_dict()

    other, _ = make_learner(path=tmp_path, seed=1)  # other weights, empty optimizer state
    assert not torch.equal(other.model.weight, saved_model["weight"])
    assert not other.opt.state_dict()["state"]
    other.load("stage1")
    for key, value in other.model.state_dict().items():
        assert torch.equal(value, saved_model[key]), key
    loaded_opt = other.opt.state_dict()
    assert loaded_opt["state"].keys() == saved_opt["state"].keys() and saved_opt["state"]
    for index, state in saved_opt["state"].items():
        for name, value in state.items():
            assert torch.equal(loaded_opt["state"][index][name], value), (index, name)
    assert [g["lr"] for g in loaded_opt["param_groups"]] == [
        g["lr"] for g in saved_opt["param_groups"]
    ]
    # the restored state drives the loaded model's parameters: one more epoch on the same
    # batches gives the same weights in both learners
    for learner in (learn, other):
        torch.manual_seed(2)
        learner.fit(1, 1e-2)
    for key, value in other.model.state_dict().items():
        assert torch.equal(value, learn.model.state_dict()[key]), key


# ----- recorder -----
def test_recorder_rows_columns_lrs_and_plots() -> None:
    learn, _ = make_learner(metrics=[accuracy])
    n_iter = len(learn.dls.train)
    learn.fit(3, 1e-2)
    rec = learn.recorder
    assert [row["epoch"] for row in rec.values] == [0, 1, 2]
    for row in rec.values:
        assert set(row) == {"epoch", "train_loss", "valid_loss", "accuracy", "time"}
        assert all(math.isfinite(row[key]) for key in row)
        assert row["time"] >= 0
    # the epoch's train loss is the item-weighted mean of its batch losses (128 = 8 x 16)
    for epoch, row in enumerate(rec.values):
        batch_losses = rec.losses[epoch * n_iter : (epoch + 1) * n_iter]
        assert row["train_loss"] == pytest.approx(sum(batch_losses) / n_iter, rel=1e-6)
    df = rec.to_df()
    assert list(df.columns) == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert len(df) == 3
    assert len(rec.lrs) == len(rec.losses) == len(rec.moms) == 3 * n_iter
    assert rec.lrs == [pytest.approx(1e-2)] * (3 * n_iter)
    for plot in (rec.plot_loss, rec.plot_sched, rec.plot_metrics):
        fig = plot()
        assert isinstance(fig, Figure)
        assert fig.axes and any(ax.lines for ax in fig.axes)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_a_plain_function_metric_is_named_after_the_function(capsys) -> None:
    def share_of_class_zero(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
        return (pred.argmax(1) == 0).float().mean()

    learn, (x_valid, _) = make_learner(metrics=[share_of_class_zero])
    learn.progress.show = True
    learn.fit(1, 1e-2)
    header = capsys.readouterr().out.splitlines()[0]
    assert "share_of_class_zero" in header.split()
    assert "share_of_class_zero" in learn.recorder.to_df().columns
    with torch.no_grad():
        expected = (learn.model(x_valid).argmax(1) == 0).float().mean().item()
    assert learn.recorder.values[0]["share_of_class_zero"] == pytest.approx(expected, abs=1e-6)


# ----- events and cancellation -----
def test_events_fire_in_the_documented_order() -> None:
    # 32 train items in batches of 16 (2 batches), 16 valid items in one batch of 32
    log = EventLog()
    learn, _ = make_learner(n_train=32, n_valid=16, bs=16, valid_bs=32, cbs=[log])
    learn.fit(1)
    expected = [
        "before_fit",
        "before_epoch",
        "before_train",
        *TRAIN_BATCH,
        *TRAIN_BATCH,
        "after_train",
        "before_validate",
        *VALID_BATCH,
        "after_validate",
        "after_epoch",
        "after_fit",
    ]
    assert log.events == expected
    assert set(log.events) == set(EVENTS)


class CancelStep(EventLog):
    def before_step(self) -> None:
        super().before_step()
        raise CancelBatch()


def test_cancel_batch_in_before_step_skips_the_step() -> None:
    log = CancelStep()
    learn, _ = make_learner(n_train=32, n_valid=16, bs=16, cbs=[log])
    weights = {k: v.clone() for k, v in learn.model.state_dict().items()}
    learn.fit(2, 1e-1)
    for key, value in learn.model.state_dict().items():
        assert torch.equal(value, weights[key]), key
    first_batch = log.events[3:9]
    assert first_batch == [*TRAIN_BATCH[:5], "after_batch"]
    assert "after_step" not in log.events
    # the batch still counts: recorded once per batch, and validation still runs
    assert len(learn.recorder.losses) == 4
    assert log.events.count("before_validate") == 2


class CancelEpochAt(EventLog):
    order = 100  # after the recorder, so the cancelled batch's loss is recorded

    def after_batch(self) -> None:
        super().after_batch()
        if self.learn.training and self.learn.epoch == 0 and self.learn.iter == 0:
            raise CancelEpoch()


def test_cancel_epoch_skips_the_rest_of_the_epoch_only() -> None:
    log = CancelEpochAt()
    learn, _ = make_learner(n_train=32, n_valid=16, bs=16, cbs=[log])
    learn.fit(2)
    first_epoch = log.events[: log.events.index("after_epoch") + 1]
    assert first_epoch == [
        "before_fit",
        "before_epoch",
        "before_train",
        *TRAIN_BATCH,
        "after_epoch",
    ]
    second_epoch = log.events[len(first_epoch) :]
    assert second_epoch == [
        "before_epoch",
        "before_train",
        *TRAIN_BATCH,
        *TRAIN_BATCH,
        "after_train",
        "before_validate",
        *VALID_BATCH,
        "after_validate",
        "after_epoch",
        "after_fit",
    ]
    rec = learn.recorder
    assert [row["epoch"] for row in rec.values] == [0, 1]
    assert math.isnan(rec.values[0]["valid_loss"])
    # the second epoch's train loss covers its own two batches, not the cancelled one
    assert len(rec.losses) == 3
    assert rec.values[1]["train_loss"] == pytest.approx(sum(rec.losses[1:]) / 2, rel=1e-6)


class CancelFitAt(EventLog):
    def after_batch(self) -> None:
        super().after_batch()
        if self.learn.training and self.learn.epoch == 1 and self.learn.iter == 0:
            raise CancelFit()


def test_cancel_fit_stops_training_and_after_fit_still_runs() -> None:
    log = CancelFitAt()
    learn, _ = make_learner(n_train=32, n_valid=16, bs=16, cbs=[log])
    learn.fit(5)
    assert log.events.count("before_epoch") == 2
    assert log.events.count("after_epoch") == 1
    assert log.events[-2:] == ["after_batch", "after_fit"]
    assert len(learn.recorder.values) == 1
    assert learn.epoch == 1


def test_fit_callbacks_are_attached_for_that_fit_only() -> None:
    learn, _ = make_learner()
    log = EventLog()
    learn.fit(1, cbs=[log])
    assert log.events[0] == "before_fit" and log.events[-1] == "after_fit"
    assert log not in learn.cbs
    n_seen = len(log.events)
    learn.fit(1)
    assert len(log.events) == n_seen


class OnlyBatchAndEpoch(Callback):
    def before_batch(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass


def test_show_training_loop_lists_a_callback_under_the_events_it_overrides(capsys) -> None:
    learn, _ = make_learner(cbs=[OnlyBatchAndEpoch()])
    text = learn.show_training_loop()
    assert capsys.readouterr().out.strip() == text.strip()
    lines = {line.split()[0]: line for line in text.splitlines()}
    assert list(lines) == list(EVENTS)
    for event in EVENTS:
        listed = "OnlyBatchAndEpoch" in lines[event]
        assert listed == (event in ("before_batch", "after_epoch")), event
    assert "Recorder" in lines["after_batch"]


# ----- progress -----
def test_progress_prints_a_header_and_one_row_per_epoch(capsys) -> None:
    learn, _ = make_learner(metrics=[accuracy])
    learn.progress.show = True
    learn.fit(3, 1e-2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    for epoch, (line, row) in enumerate(zip(lines[1:], learn.recorder.values)):
        cells = line.split()
        assert cells[0] == str(epoch)
        assert cells[1] == f"{row['train_loss']:.6f}"
        assert cells[2] == f"{row['valid_loss']:.6f}"
        assert cells[3] == f"{row['accuracy']:.6f}"
        assert cells[4].count(":") == 1
    assert "\r" not in "".join(lines) and "#" not in "".join(lines)


def test_none_for_metrics_and_callbacks_is_accepted() -> None:
    """fastai users write metrics=None / cbs=None; both mean 'none'."""
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    dls = DataLoaders.from_tensors((x, y), (x, y), bs=16, device="cpu")
    learn = Learner(dls, nn.Linear(4, 2), metrics=None, cbs=None)
    learn.progress.show = False
    learn.fit(1, cbs=None)
    learn.fit_one_cycle(1, cbs=None)
    assert learn.metrics == [] and len(learn.recorder.values) == 1
