"""Channels-last memory format: `learn.to_channelslast()`, `to_contiguous()`, `ChannelsLast`."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mentor.callbacks.memory_format import ChannelsLast
from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders
from mentor.train import Callback, Learner, accuracy

CHANNELS_LAST = torch.channels_last


class Layouts(Callback):
    """Records whether each batch's images reach the model in channels-last format."""

    order = 90

    def __init__(self) -> None:
        super().__init__()
        self.last: list[bool] = []

    def before_batch(self) -> None:
        self.last.append(self.learn.xb[0].is_contiguous(memory_format=CHANNELS_LAST))


def conv_learner() -> Learner:
    set_seed(0)
    x = torch.randn(96, 3, 16, 16)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    dls = DataLoaders.from_tensors((x[:64], y[:64]), (x[64:], y[64:]), bs=16, device="cpu")
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2),
    )  # fmt: skip
    learn = Learner(dls, model, metrics=[accuracy])
    learn.progress.show = False
    return learn


def conv_weights_last(model: nn.Module) -> list[bool]:
    return [
        p.is_contiguous(memory_format=CHANNELS_LAST) and not p.is_contiguous()
        for p in model.parameters()
        if p.ndim == 4
    ]


def test_channels_last_trains_to_the_same_place(tmp_path: Path) -> None:
    plain = conv_learner()
    plain.fit(2, 1e-2)
    learn, layouts = conv_learner(), Layouts()
    assert learn.to_channelslast() is learn
    learn.to_channelslast()  # switching again replaces the callback, never stacks it
    assert sum(isinstance(cb, ChannelsLast) for cb in learn.cbs) == 1
    learn.fit(2, 1e-2, cbs=[layouts])
    assert all(conv_weights_last(learn.model)) and len(conv_weights_last(learn.model)) == 2
    assert layouts.last and all(layouts.last)  # training and validation batches
    for a, b in zip(plain.recorder.values, learn.recorder.values):
        assert abs(a["valid_loss"] - b["valid_loss"]) < 1e-4, (a, b)
    preds, _ = learn.get_preds()
    plain_preds, _ = plain.get_preds()
    assert torch.allclose(preds, plain_preds, atol=1e-4)
    learn.save(tmp_path / "last")  # a checkpoint of channels-last weights loads anywhere
    plain.load(tmp_path / "last")
    assert torch.allclose(plain.get_preds()[0], preds, atol=1e-6)


def test_to_contiguous_undoes_it() -> None:
    learn, layouts = conv_learner(), Layouts()
    learn.to_channelslast().to_contiguous()
    assert not any(isinstance(cb, ChannelsLast) for cb in learn.cbs)
    assert not any(conv_weights_last(learn.model))
    learn.fit(1, 1e-2, cbs=[layouts])
    assert layouts.last and not any(layouts.last)
