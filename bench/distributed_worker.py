"""One process of the distributed benchmark (`bench/distributed.py` starts it).

Trains each of `--models` in turn with a plain `Learner.fit`, one warm-up epoch and
`--epochs` timed epochs, and writes what it measured to `--out/rank<RANK>.json`: per model,
the seconds and the items of each timed epoch's training phase (validation, start-up and the
warm-up epoch are not timed). Both models train in one process, so a run starts Python (and
torchrun) once.
The script is the same in both arms of the benchmark: started as `python -m
bench.distributed_worker` it trains on one process; started by `torch.distributed.run` it
trains data-parallel, because mentor's `Learner` sees `WORLD_SIZE` > 1 at its first fit.

Models:
- `cnn`: `bench.common.small_cnn` on MNIST 3 vs 7 (`mnist_sample`) held in memory, through
  `DataLoaders.from_tensors`, cross-entropy.
- `tabular`: `tabular_learner(layers=[200, 100])` on `adult_sample` with the course's procs
  (`examples.adult.adult_dls`).

Example (what the benchmark runs; `--bs` is the batch size of each process):
    python -m torch.distributed.run --standalone --nproc_per_node 2 \
        -m bench.distributed_worker --models cnn tabular --bs 64 --threads 1 --out /tmp/result
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from bench.common import mnist_sample_tensors, small_cnn
from examples.adult import adult_dls
from mentor.core.paths import data_path
from mentor.data.loaders import DataLoaders
from mentor.tabular import tabular_learner
from mentor.train import Callback, Learner

MODELS = ("cnn", "tabular")
LR = 1e-3


class TrainTimer(Callback):
    """Times the training phase of every epoch after the first and counts the items this
    process trained on in it (read from the batches' shapes: no device sync)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self.items: list[int] = []
        self.start = 0.0
        self.count = 0

    def before_train(self) -> None:
        """Start the clock and the item count of this epoch."""
        self.start = time.perf_counter()
        self.count = 0

    def after_batch(self) -> None:
        """Count the items of a training batch."""
        if self.learn.training:
            self.count += len(self.learn.yb[0])

    def after_train(self) -> None:
        """Keep this epoch's seconds and items, unless it is the warm-up epoch."""
        seconds = time.perf_counter() - self.start
        if self.learn.epoch > 0:
            self.seconds.append(seconds)
            self.items.append(self.count)


def cnn_learner(bs: int, n_train: int | None) -> Learner:
    """The small CNN on MNIST 3 vs 7 in memory (the first `n_train` training images)."""
    x_train, y_train, x_valid, y_valid = mnist_sample_tensors()
    if n_train is not None:
        x_train, y_train = x_train[:n_train], y_train[:n_train]
        x_valid, y_valid = x_valid[: n_train // 4], y_valid[: n_train // 4]
    dls = DataLoaders.from_tensors((x_train, y_train), (x_valid, y_valid), bs=bs, device="cpu")
    return Learner(dls, small_cnn(2), loss_func=nn.CrossEntropyLoss(), lr=LR)


def adult_learner(bs: int, n_rows: int | None) -> Learner:
    """`tabular_learner` on adult_sample (the first `n_rows` rows), the course's setup."""
    df = pd.read_csv(data_path("adult_sample") / "adult.csv")
    if n_rows is not None:
        df = df.iloc[:n_rows]
    dls = adult_dls(df, bs=bs, device="cpu")
    return tabular_learner(dls, layers=[200, 100], lr=LR)


def build_learner(model: str, bs: int, n_items: int | None) -> Learner:
    """The learner of benchmark model `model` (one of `MODELS`), progress bars off."""
    learn = cnn_learner(bs, n_items) if model == "cnn" else adult_learner(bs, n_items)
    learn.progress.show = False
    return learn


def timed_fit(
    model: str, bs: int, epochs: int, n_items: int | None
) -> dict[str, list[float] | list[int]]:
    """Train `model` for a warm-up epoch and `epochs` timed ones; the timed epochs' training
    seconds and items of this process."""
    torch.manual_seed(0)
    learn = build_learner(model, bs, n_items)
    timer = TrainTimer()
    learn.fit(1 + epochs, LR, cbs=[timer])
    return {"seconds": timer.seconds, "items": timer.items}


def main(argv: Sequence[str] | None = None) -> None:
    """Train each model in turn, then write `rank<RANK>.json` with this process's timed
    epochs of each into `--out`."""
    parser = argparse.ArgumentParser(description="One process of bench.distributed.")
    parser.add_argument("--models", choices=MODELS, nargs="+", default=list(MODELS))
    parser.add_argument("--bs", type=int, required=True, help="batch size of this process")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs, after 1 warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--items", type=int, default=None, help="train on the first N items")
    parser.add_argument("--out", type=Path, required=True, help="folder for rank<N>.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = {m: timed_fit(m, args.bs, args.epochs, args.items) for m in args.models}
    rank = int(os.environ.get("RANK", "0"))
    result = {
        "rank": rank,
        "world": int(os.environ.get("WORLD_SIZE", "1")),
        "threads": torch.get_num_threads(),
        "models": models,
    }
    (args.out / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
