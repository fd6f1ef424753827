"""Small builders shared by several test modules."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mentor.core.seed import set_seed
from mentor.data.loaders import DataLoaders
from mentor.train import Callback, CancelFit, Learner, accuracy


def tiny_classifier(path: Path | str = ".") -> Learner:
    """A seeded two-class MLP learner on 64 train / 32 valid random items, silent."""
    set_seed(0)
    x = torch.randn(96, 5)
    y = (x[:, 0] > 0).long()
    dls = DataLoaders.from_tensors((x[:64], y[:64]), (x[64:], y[64:]), bs=16, device="cpu")
    learn = Learner(
        dls,
        nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2)),
        metrics=[accuracy],
        path=path,
    )
    learn.progress.show = False
    return learn


def seeded_classifier(
    path: Path | str,
    seed: int = 0,
    metrics: Sequence[Any] = (),
    splitter: Callable[[nn.Module], list[list[nn.Parameter]]] | None = None,
) -> Learner:
    """A two-layer classifier on 64 train / 32 valid items (4 training batches of 16),
    silent; the data does not depend on `seed`, the initial weights do."""
    x = torch.randn(96, 5, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    set_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    dls = DataLoaders.from_tensors((x[:64], y[:64]), (x[64:], y[64:]), bs=16, device="cpu")
    learn = Learner(dls, model, metrics=list(metrics), path=path, splitter=splitter)
    learn.progress.show = False
    return learn


class Script(Callback):
    """Overwrites a column of each epoch's row after the Recorder (50) wrote it and before
    the trackers (65) read it."""

    order = 55

    def __init__(self, column: str, values: Sequence[float]) -> None:
        super().__init__()
        self.column, self.values = column, list(values)

    def after_epoch(self) -> None:
        self.learn.recorder.values[-1][self.column] = self.values[self.learn.epoch]


class StopAfterEpoch(Callback):
    """Stops the fit at the end of epoch `epoch`, after the checkpoint callback (70) has
    written that epoch's file."""

    order = 80

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def after_epoch(self) -> None:
        if self.learn.epoch == self.epoch:
            raise CancelFit()


def tiny_folder(source: Path, dest: Path, n_train: int, n_valid: int) -> Path:
    """A slice of mnist_tiny: the first `n` images of each class in train and valid."""
    for split, n in (("train", n_train), ("valid", n_valid)):
        for label in ("3", "7"):
            target = dest / split / label
            target.mkdir(parents=True)
            for file in sorted((source / split / label).glob("*.png"))[:n]:
                shutil.copy(file, target / file.name)
    return dest


def tabular_frame(n: int = 80) -> pd.DataFrame:
    """Seeded rows with categorical (color, size), continuous (x with NaNs, z) columns and a
    yes/no label, for tabular tests."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    x[::7] = np.nan
    return pd.DataFrame({
        "color": rng.choice(["red", "green", "blue"], size=n),
        "size": rng.integers(1, 4, size=n),
        "x": x,
        "z": rng.uniform(0, 10, size=n),
        "label": np.where(rng.normal(size=n) > 0, "yes", "no"),
    })  # fmt: skip
