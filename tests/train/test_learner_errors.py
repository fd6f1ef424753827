"""Wrong inputs get errors for people: they name the offending values and say what to do."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mentor.data.loaders import DataLoaders
from mentor.train import Callback, CrossEntropyLossFlat, Learner, MSELossFlat, TrainingDiverged

BS = 16


def make_learner(x_train, y_train, x_valid, y_valid, model: nn.Module, **kwargs) -> Learner:
    dls = DataLoaders.from_tensors((x_train, y_train), (x_valid, y_valid), bs=BS, device="cpu")
    learn = Learner(dls, model, **kwargs)
    learn.progress.show = False
    return learn


def class_data(n_train: int = 64, n_valid: int = 32, n_classes: int = 3):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_valid, 4, generator=gen)
    y = torch.randint(0, n_classes, (n_train + n_valid,), generator=gen)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


# ----- losses that don't fit the data -----
def test_cross_entropy_with_float_multi_column_targets_names_both_shapes() -> None:
    x_train, _, x_valid, _ = class_data()
    targets = torch.rand(len(x_train), 3)  # three float columns, but the model outputs 2
    learn = make_learner(
        x_train,
        targets,
        x_valid,
        torch.rand(len(x_valid), 3),
        nn.Linear(4, 2),
        loss_func=CrossEntropyLossFlat(),
    )
    with pytest.raises(ValueError) as info:
        learn.fit(1)
    message = str(info.value)
    assert f"[{BS}, 2]" in message and f"[{BS}, 3]" in message
    assert "CrossEntropyLossFlat" in message
    assert "integer class indices" in message  # the hint for float targets


def test_mse_with_mismatched_shapes_names_both_shapes() -> None:
    x_train, _, x_valid, _ = class_data()
    learn = make_learner(
        x_train,
        torch.randn(len(x_train), 3),
        x_valid,
        torch.randn(len(x_valid), 3),
        nn.Linear(4, 2),
        loss_func=MSELossFlat(),
    )
    with pytest.raises(ValueError) as info:
        learn.fit(1)
    message = str(info.value)
    assert f"[{BS}, 2]" in message and f"[{BS}, 3]" in message
    assert "MSELossFlat" in message
    # nothing trained: the error came from the first batch
    assert learn.recorder.n_batches == 0


@pytest.mark.parametrize("loss_func", [CrossEntropyLossFlat(), nn.CrossEntropyLoss()])
def test_too_few_model_outputs_for_the_classes_in_the_data(loss_func: nn.Module) -> None:
    x_train, y_train, x_valid, y_valid = class_data(n_classes=3)
    y_train = y_train.clone()
    y_train[5] = 7  # the data has (at least) 8 classes; the model outputs 3
    learn = make_learner(x_train, y_train, x_valid, y_valid, nn.Linear(4, 3), loss_func=loss_func)
    with pytest.raises(ValueError) as info:
        learn.fit(1)
    message = str(info.value)
    assert "outputs 3 values" in message
    assert "at least 8 classes" in message
    assert "n_out=8" in message
    assert info.value.__cause__ is not None  # the original error stays attached


# ----- empty data -----
def test_an_empty_training_set_is_an_error_that_says_so() -> None:
    x_train, y_train, x_valid, y_valid = class_data(n_train=0)
    learn = make_learner(
        x_train, y_train, x_valid, y_valid, nn.Linear(4, 3), loss_func=CrossEntropyLossFlat()
    )
    with pytest.raises(ValueError, match="empty"):
        learn.fit(1)
    # without a loss the learner reads the first batch to pick one, and says the same
    with pytest.raises(ValueError, match="empty"):
        make_learner(x_train, y_train, x_valid, y_valid, nn.Linear(4, 3))
    # plain torch loaders too
    empty = DataLoader(TensorDataset(x_train, y_train), batch_size=BS)
    valid = DataLoader(TensorDataset(x_valid, y_valid), batch_size=BS)
    plain = Learner((empty, valid), nn.Linear(4, 3), loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError, match="empty"):
        plain.fit(1)


def test_drop_last_with_a_too_large_batch_is_an_empty_training_set() -> None:
    x_train, y_train, x_valid, y_valid = class_data(n_train=10)
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=BS, drop_last=True)
    valid = DataLoader(TensorDataset(x_valid, y_valid), batch_size=BS)
    learn = Learner((train, valid), nn.Linear(4, 3), loss_func=CrossEntropyLossFlat())
    with pytest.raises(ValueError, match="empty.*drop_last"):
        learn.fit(1)


def test_an_empty_validation_set_trains_without_validation_and_says_so_once() -> None:
    x_train, y_train, x_valid, y_valid = class_data(n_valid=0)
    learn = make_learner(
        x_train, y_train, x_valid, y_valid, nn.Linear(4, 3), loss_func=CrossEntropyLossFlat()
    )
    weights = learn.model.weight.detach().clone()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # count every call, not just the first per location
        learn.fit(2, 1e-2)
        learn.fit(1, 1e-2)
    said = [w for w in caught if "validation" in str(w.message)]
    assert len(said) == 1
    assert "empty" in str(said[0].message)
    rows = learn.recorder.values
    assert len(rows) == 1  # the second fit's history
    assert math.isnan(rows[0]["valid_loss"]) and math.isfinite(rows[0]["train_loss"])
    assert not torch.equal(learn.model.weight, weights)


def test_no_validation_loader_at_all_also_trains() -> None:
    x_train, y_train, _, _ = class_data()
    dls = DataLoaders.from_tensors((x_train, y_train), None, bs=BS, device="cpu")
    learn = Learner(dls, nn.Linear(4, 3), loss_func=CrossEntropyLossFlat())
    learn.progress.show = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learn.fit(2)
    assert sum("validation" in str(w.message) for w in caught) == 1
    assert [math.isnan(row["valid_loss"]) for row in learn.recorder.values] == [True, True]
    with pytest.raises(ValueError, match="no validation set"):
        learn.validate()


# ----- a loss that is not a number -----
class NaNInputs(Callback):
    """Puts a NaN into the inputs of one training batch, and counts epochs."""

    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.epoch, self.batch = epoch, batch
        self.epochs_started = 0

    def before_epoch(self) -> None:
        self.epochs_started += 1

    def before_batch(self) -> None:
        learn = self.learn
        if learn.training and learn.epoch == self.epoch and learn.iter == self.batch:
            x = learn.xb[0].clone()
            x[0, 0] = math.nan
            learn.xb = (x,)


class WeightLog(Callback):
    """A copy of the weights after every training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.after: list[dict[str, torch.Tensor]] = []

    def after_batch(self) -> None:
        if self.learn.training:
            self.after.append({k: v.clone() for k, v in self.learn.model.state_dict().items()})


@pytest.mark.parametrize(("flush_every", "restored"), [(32, 7), (3, 7), (2, 9)])
def test_a_nan_loss_stops_training_with_the_last_good_weights(
    flush_every: int, restored: int
) -> None:
    # 8 batches per epoch, NaN inputs at epoch 1, batch 3 (batch 11 of the fit). A copy of
    # the weights is kept at each check and is good once the next loss is finite: checked at
    # the end of each epoch (flush 32), the copy after batch 7; every 3 batches (checks after
    # 2, 5, 7, 10, 13) the copy after 10 made the NaN loss, so again 7; every 2, the one after 9.
    x_train, y_train, x_valid, y_valid = class_data(n_train=128)
    injector, log = NaNInputs(epoch=1, batch=3), WeightLog()
    learn = make_learner(
        x_train, y_train, x_valid, y_valid, nn.Linear(4, 3),
        loss_func=CrossEntropyLossFlat(), cbs=[injector, log],
    )  # fmt: skip
    learn.recorder.flush_every = flush_every
    with pytest.raises(TrainingDiverged, match=r"nan at epoch 1, batch 3 \(learning rate 0.01\)"):
        learn.fit(4, 1e-2)
    assert injector.epochs_started == 2  # no more epochs after the NaN
    assert len(learn.recorder.values) == 1 and learn.epoch == 1
    assert all(math.isfinite(loss) for loss in learn.recorder.losses[: 8 + 3])
    assert math.isnan(learn.recorder.losses[8 + 3])
    assert math.isnan(float(log.after[-1]["weight"].sum()))  # the fit had gone on to NaN
    for name, value in learn.model.state_dict().items():
        assert torch.equal(value, log.after[restored][name]), name
    assert not learn.opt.state  # the optimizer starts again (its moments held NaN)
    learn.fit(1, 1e-2)  # and a new fit trains from the restored weights
    assert math.isfinite(learn.recorder.values[-1]["train_loss"])
