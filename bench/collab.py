"""Collaborative filtering: `collab_learner` training against a hand-written PyTorch loop.

On MovieLens 100k (`ml-100k/u.data`, 20% random validation, seed 42), both sides train the
same `EmbeddingDotBias(n_factors=40, y_range=(0, 5.5))` from the same initial weights, on the
same prepared index tensors (those of `CollabDataLoaders.from_df`), in the same batch order
(reshuffled every epoch from the same seed), with the same optimizer (`torch.optim.AdamW`
over `mentor.optim.param_groups`, mentor's Adam defaults: betas (0.9, 0.99), eps 1e-5, wd
0.1), the same loss (MSE), batch size 64 and constant learning rate 5e-3, and a validation
pass every epoch. The hand-written loop keeps its loss sums on the device and reads them
once per epoch, as the Learner does.

Runs alternate (baseline, mentor, mentor, baseline, ...) after one warm-up pair; the ratio
is median(mentor) / median(baseline) of the seconds per epoch (target <= 1.2). Both sides'
validation MSE is printed: they should match closely.

Run: `python -m bench.collab` (about 20 s on one thread), or `--quick` for a smoke run.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from bench.common import PairedRuns, machine, spread
from mentor.collab import CollabDataLoaders, EmbeddingDotBias, collab_learner
from mentor.core.paths import data_path
from mentor.optim import Adam, param_groups
from mentor.train.learner import Learner

# mentor's default `Adam` hyper-parameters, spelled out for the hand-written loop.
BETAS, EPS, WD = (0.9, 0.99), 1e-5, 0.1
N_FACTORS, Y_RANGE, LR, BS = 40, (0.0, 5.5), 5e-3, 64
TARGET = 1.2
QUICK_ROWS = 5000  # ratings in a --quick run
Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class RunResult:
    """Seconds per epoch of one training run and the validation MSE it reached."""

    seconds: float
    valid_mse: float


@dataclass
class BenchResult(PairedRuns):
    """All timed runs (`RunResult`s, seconds per epoch) of both sides:
    `collab_learner(...).fit` against the hand-written loop."""

    n_epoch: int

    def line(self) -> str:
        """The printed summary (two lines)."""
        verdict = "PASS" if self.ratio <= TARGET else "MISS"
        return (
            f"collab bs={BS}: baseline {self.baseline_s:.3f} s/epoch, mentor "
            f"{self.mentor_s:.3f} s/epoch, ratio {self.ratio:.3f} (target <= {TARGET}) "
            f"{verdict}\n      runs: baseline {spread(self.baseline)}, mentor "
            f"{spread(self.mentor)}; valid MSE "
            f"baseline {self.baseline[-1].valid_mse:.4f} / mentor {self.mentor[-1].valid_mse:.4f}"
        )


def load_ratings(n_rows: int | None = None) -> pd.DataFrame:
    """`ml-100k/u.data` (tab-separated user, movie, rating, timestamp); the first `n_rows`."""
    df = pd.read_csv(
        data_path("ml-100k") / "u.data",
        sep="\t",
        header=None,
        names=["user", "movie", "rating", "timestamp"],
    )
    return df if n_rows is None else df.iloc[:n_rows]


def prepared_tensors(dls: CollabDataLoaders) -> Tensors:
    """The loaders' own prepared tensors: `(x_train, y_train, x_valid, y_valid)`."""
    train, valid = dls.train.loader, getattr(dls.valid, "loader", None)
    if valid is None:
        raise ValueError("the benchmark needs a validation split; use valid_pct > 0")
    return (*train.tensors, *valid.tensors)  # type: ignore[attr-defined,return-value]


def baseline_fit(model: nn.Module, data: Tensors, n_epoch: int) -> float:
    """The loop a person writes by hand; returns the last epoch's validation MSE."""
    x_train, y_train, x_valid, y_valid = data
    opt = torch.optim.AdamW(param_groups(model, wd=WD), lr=LR, betas=BETAS, eps=EPS)
    n_train, n_valid, valid_bs = len(x_train), len(x_valid), 2 * BS
    valid_mse = float("nan")
    for _ in range(n_epoch):
        model.train()
        order = torch.randperm(n_train, device=x_train.device)
        x_shuffled, y_shuffled = x_train[order], y_train[order]
        train_loss = torch.zeros((), device=x_train.device)
        for start in range(0, n_train, BS):
            xb, yb = x_shuffled[start : start + BS], y_shuffled[start : start + BS]
            loss = nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            train_loss += loss.detach() * len(yb)
        model.eval()
        valid_loss = torch.zeros((), device=x_valid.device)
        with torch.no_grad():
            for start in range(0, n_valid, valid_bs):
                xb, yb = x_valid[start : start + valid_bs], y_valid[start : start + valid_bs]
                valid_loss += nn.functional.mse_loss(model(xb), yb, reduction="sum")
        # The one read per epoch, as a script printing its progress would do.
        _, valid_mse = (train_loss / n_train).item(), (valid_loss / n_valid).item()
    return valid_mse


def timed(fn: Callable[[], float], seed: int, n_epoch: int) -> RunResult:
    """Run `fn` from a fresh seed and a collected heap; seconds per epoch and its MSE."""
    torch.manual_seed(seed)
    gc.collect()
    start = time.perf_counter()
    mse = fn()
    return RunResult((time.perf_counter() - start) / n_epoch, mse)


def run_pair(
    dls: CollabDataLoaders, model: nn.Module, n_epoch: int, seed: int, mentor_first: bool
) -> tuple[RunResult, RunResult]:
    """A baseline run and a mentor run from the same weights and batch order."""
    base_model = copy.deepcopy(model)
    learn: Learner = collab_learner(dls, N_FACTORS, y_range=Y_RANGE, opt_func=Adam, lr=LR, wd=WD)
    learn.model.load_state_dict(model.state_dict())
    learn.progress.show = False
    data = prepared_tensors(dls)

    def base_fit() -> float:
        return baseline_fit(base_model, data, n_epoch)

    def mentor_fit() -> float:
        learn.fit(n_epoch, LR)
        return float(learn.recorder.values[-1]["valid_loss"])

    if mentor_first:
        mentor = timed(mentor_fit, seed, n_epoch)
        return timed(base_fit, seed, n_epoch), mentor
    base = timed(base_fit, seed, n_epoch)
    return base, timed(mentor_fit, seed, n_epoch)


def measure(
    dls: CollabDataLoaders, runs: int = 5, warmup: int = 1, n_epoch: int = 1
) -> BenchResult:
    """`warmup` untimed pairs of runs, then `runs` timed pairs, alternating the order."""
    torch.manual_seed(0)
    model = EmbeddingDotBias(N_FACTORS, dls.n_users, dls.n_items, Y_RANGE).to(dls.device)
    result = BenchResult(n_epoch)
    for index in range(warmup + runs):
        base, mentor = run_pair(dls, model, n_epoch, seed=index, mentor_first=index % 2 == 1)
        if index >= warmup:
            result.baseline.append(base)
            result.mentor.append(mentor)
    return result


def main(argv: Sequence[str] | None = None) -> BenchResult:
    """Measure and print the ratio, both medians, both validation MSEs and the machine."""
    parser = argparse.ArgumentParser(description="collab_learner against a hand-written loop.")
    parser.add_argument("--quick", action="store_true", help="1 run per side, 5000 ratings")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per side (5)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (1)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ratings = load_ratings(QUICK_ROWS if args.quick else None)
    dls = CollabDataLoaders.from_df(ratings, valid_pct=0.2, seed=42, bs=BS)
    runs = args.runs or (1 if args.quick else 5)
    print(f"machine: {machine()}")
    print(f"device: {dls.device}; load average before: {os.getloadavg()[0]:.2f}")
    print(f"data: {len(ratings)} ratings, {dls.n_users} users, {dls.n_items} items; {runs} runs")
    result = measure(dls, runs, n_epoch=args.epochs)
    print(result.line())
    print(f"load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    return result


if __name__ == "__main__":
    main()
