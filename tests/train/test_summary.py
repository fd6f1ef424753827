"""`learn.summary()`: the layer table of the course's two-layer CIFAR net, counted by hand."""

from __future__ import annotations

import torch
from torch import nn

from mentor.data.loaders import DataLoaders
from mentor.train import CrossEntropyLossFlat, Learner, ModelSummary

BS = 8


def cifar_learner(**kwargs) -> Learner:
    """The course's two-layer net on random 3x32x32 images of 10 classes."""
    torch.manual_seed(0)
    x = torch.randn(2 * BS, 3, 32, 32)
    y = torch.randint(0, 10, (2 * BS,))
    dls = DataLoaders.from_tensors((x, y), (x, y), bs=BS, device="cpu")
    model = nn.Sequential(nn.Flatten(), nn.Linear(3072, 40), nn.ReLU(), nn.Linear(40, 10))
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), **kwargs)
    learn.progress.show = False
    return learn


def test_summary_of_the_two_layer_cifar_net(capsys) -> None:
    learn = cifar_learner()
    summary = learn.summary()
    printed = capsys.readouterr().out
    assert isinstance(summary, ModelSummary)
    assert summary.input_shape == [BS, 3, 32, 32]
    rows = [(row.kind, row.output_shape, row.n_params) for row in summary.rows]
    assert rows == [
        ("Flatten", [BS, 3072], 0),
        ("Linear", [BS, 40], 3072 * 40 + 40),
        ("ReLU", [BS, 40], 0),
        ("Linear", [BS, 10], 40 * 10 + 10),
    ]
    assert [row.n_params for row in summary.rows if row.kind == "Linear"] == [122_920, 410]
    assert summary.total_params == summary.trainable_params == 123_330
    assert summary.frozen_layers == 0
    assert printed.strip() == str(summary).strip()
    for text in ("122,920", "410", "123,330", f"[{BS}, 40]", f"[{BS}, 10]", f"[{BS}, 3072]"):
        assert text in printed, text
    assert "Total params: 123,330" in printed
    assert "Trainable params: 123,330" in printed
    assert "Non-trainable params: 0" in printed
    # the summary runs the model without training it and leaves its mode alone
    assert learn.model.training


def test_summary_after_freezing_counts_trainable_params_and_frozen_layers(capsys) -> None:
    def splitter(model: nn.Module) -> list[list[nn.Parameter]]:
        return [list(model[1].parameters()), list(model[3].parameters())]

    learn = cifar_learner(splitter=splitter)
    learn.freeze()
    summary = learn.summary()
    printed = capsys.readouterr().out
    assert summary.total_params == 123_330
    assert summary.trainable_params == 410
    assert summary.frozen_layers == 1
    assert [row.trainable for row in summary.rows if row.kind == "Linear"] == [False, True]
    assert "Trainable params: 410" in printed
    assert "Non-trainable params: 122,920" in printed
    assert "Frozen layers: 1" in printed

    learn.unfreeze()
    summary = learn.summary()
    assert summary.trainable_params == 123_330 and summary.frozen_layers == 0
