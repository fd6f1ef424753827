"""LSUVCallback: LSUV on the first training batch, once, and never again on resume."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from mentor.callbacks.hooks import ActivationStats
from mentor.callbacks.lsuv import LSUVCallback
from mentor.core.init import lsuv_init
from mentor.core.layers import GeneralRelu
from mentor.core.seed import set_seed
from mentor.data.loaders import TensorLoader
from mentor.train import Callback, CancelBatch, Learner
from mentor.train.checkpoint import load_checkpoint


def small_cnn() -> nn.Sequential:
    def block(ni: int, nf: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(ni, nf, 3, 2, 1), GeneralRelu(0.1, 0.4, 6.0))

    return nn.Sequential(block(1, 4), block(4, 8), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 2))  # fmt: skip


def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(96, 1, 8, 8, generator=gen) * 2 + 1
    return x, (x.mean((1, 2, 3)) > 1).long()


def learner(model: nn.Module, cbs: list[Callback], shuffle: bool = False) -> Learner:
    x, y = data()
    train = TensorLoader(x[:64], y[:64], bs=16, shuffle=shuffle)
    valid = TensorLoader(x[64:], y[64:], bs=16)
    learn = Learner((train, valid), model, loss_func=nn.CrossEntropyLoss(), cbs=cbs)
    learn.progress.show = False
    return learn


class NoStep(Callback):
    """Skips every backward pass and step: the weights move only if something else moves them."""

    def before_backward(self) -> None:
        raise CancelBatch


def test_lsuv_callback_initialises_with_the_first_training_batch_once() -> None:
    set_seed(0)
    model = small_cnn()
    expected = copy.deepcopy(model)
    lsuv_init(expected, data()[0][:16])  # the first batch of the unshuffled loader
    lsuv = LSUVCallback()
    stats = ActivationStats(modules=[model[0][1], model[1][1]], with_hist=False)
    learn = learner(model, [stats, lsuv, NoStep()])
    learn.fit(1)  # no step moves the weights: what is left is LSUV's
    for got, want in zip(model.state_dict().values(), expected.state_dict().values()):
        torch.testing.assert_close(got, want)
    assert lsuv.done and len(lsuv.stats) == 2
    assert all(abs(s.std - 1) <= 0.05 for s in lsuv.stats)
    assert float(model[0][1].sub) != pytest.approx(0.4)
    # ActivationStats recorded the batch's own forward pass, after LSUV: unit std
    first = stats.stats.std[0]
    assert stats.stats.std.shape == (4, 2) and (first - 1).abs().max().item() <= 1e-3
    trained = copy.deepcopy(model.state_dict())
    learn.fit(1)  # a second fit does not initialise again
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())


class StopAt(Callback):
    """Stops the fit with an error after training batch `at` of epoch 1, as a crash would."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def after_batch(self) -> None:
        if self.learn.training and self.learn.epoch == 1 and self.learn.iter == self.at:
            raise KeyboardInterrupt


def final_weights(learn: Learner, **fit_kw: object) -> dict[str, torch.Tensor]:
    learn.fit(2, lr=1e-2, **fit_kw)  # type: ignore[arg-type]
    return {k: v.clone() for k, v in learn.model.state_dict().items()}


def test_a_resumed_fit_does_not_initialise_again_and_ends_where_one_unbroken_does(
    tmp_path: Path,
) -> None:
    set_seed(1)
    unbroken = final_weights(learner(small_cnn(), [LSUVCallback()], shuffle=True))
    set_seed(1)
    broken = learner(small_cnn(), [LSUVCallback(), StopAt(2)], shuffle=True)
    broken.path = tmp_path
    with pytest.raises(KeyboardInterrupt):
        broken.fit(2, lr=1e-2, checkpoint_every=2)
    file = tmp_path / "models" / "checkpoint.pt"
    assert load_checkpoint(file)["callbacks"]["lsuv"] == {"done": True}
    set_seed(99)  # another initial draw: the checkpoint's weights replace it
    resumed = learner(small_cnn(), [LSUVCallback()], shuffle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the state says done: no "resuming" warning either
        weights = final_weights(resumed, resume_from=file)
    for key, value in unbroken.items():
        torch.testing.assert_close(weights[key], value, rtol=0, atol=0)


def test_resuming_a_fit_that_had_no_lsuv_leaves_the_trained_weights_alone(
    tmp_path: Path,
) -> None:
    set_seed(2)
    first = learner(small_cnn(), [StopAt(2)])
    first.path = tmp_path
    with pytest.raises(KeyboardInterrupt):
        first.fit(2, lr=1e-2, checkpoint_every=2)
    file = tmp_path / "models" / "checkpoint.pt"
    set_seed(2)
    plain = final_weights(learner(small_cnn(), []), resume_from=file)
    lsuv = LSUVCallback()
    with pytest.warns(RuntimeWarning, match="not initialised again"):
        late = final_weights(learner(small_cnn(), [lsuv]), resume_from=file)
    assert lsuv.done and lsuv.stats == []
    for key, value in plain.items():
        torch.testing.assert_close(late[key], value, rtol=0, atol=0)


def test_lsuv_callback_state_and_settings() -> None:
    lsuv = LSUVCallback(tol=1e-2, max_iter=3)
    assert lsuv.name == "lsuv" and lsuv.state_dict() == {"done": False}
    lsuv.load_state_dict({"done": True})
    assert lsuv.done
    with pytest.raises(ValueError, match="tol=0"):
        LSUVCallback(tol=0)
    with pytest.raises(ValueError, match="max_iter=0"):
        LSUVCallback(max_iter=0)
