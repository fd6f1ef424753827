"""Tabular: `tabular_learner` training against a hand-written PyTorch loop, and inference.

On `adult_sample` (the course's columns and procs, 20% random validation, seed 42), both
sides train the same `TabularModel` (layers [200, 100]) from the same initial weights, on the
same prepared tensors (those of `TabularDataLoaders.from_df`), in the same batch order, with
the same optimizer (`torch.optim.AdamW` over `mentor.optim.param_groups`, mentor's Adam
defaults: betas (0.9, 0.99), eps 1e-5, wd 0.01), cross-entropy, batch size 64, constant lr
1e-2 and a validation pass every epoch (loss sums kept on the device, read once per epoch).
Runs alternate after one warm-up pair; the ratio is median(mentor) / median(baseline) of
seconds per epoch (target <= 1.2).

Also printed: preprocessing + loader construction time (median of 5), `learn.predict` of one
row (median of 100 calls after 10 warm-up calls) and `get_preds` rows per second on 10,000
rows through `dls.test_dl`.

Run: `python -m bench.tabular` (about 30 s on one thread), or `--quick` for a smoke run.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from bench.common import machine, median_time
from examples.adult import adult_dls
from mentor.core.paths import data_path
from mentor.optim import Adam, param_groups
from mentor.tabular import TabularDataLoaders, tabular_learner
from mentor.train.learner import Learner

BETAS, EPS, WD, LR, BS = (0.9, 0.99), 1e-5, 0.01, 1e-2, 64
TARGET = 1.2
Tensors = tuple[torch.Tensor, ...]


@dataclass
class BenchResult:
    """Seconds per epoch of every timed run of both sides."""

    baseline: list[float] = field(default_factory=list)
    mentor: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """median(mentor) / median(baseline)."""
        return statistics.median(self.mentor) / statistics.median(self.baseline)

    def line(self) -> str:
        """The printed summary."""
        verdict = "PASS" if self.ratio <= TARGET else "MISS"
        base, ment = statistics.median(self.baseline), statistics.median(self.mentor)
        return (
            f"tabular bs={BS}: baseline {base:.3f} s/epoch, mentor {ment:.3f} s/epoch, "
            f"ratio {self.ratio:.3f} (target <= {TARGET}) {verdict}; runs: baseline "
            f"{min(self.baseline):.3f}-{max(self.baseline):.3f} s, mentor "
            f"{min(self.mentor):.3f}-{max(self.mentor):.3f} s"
        )


def prepared_tensors(dls: TabularDataLoaders) -> tuple[Tensors, Tensors]:
    """The loaders' own prepared tensors: `(x_cat, x_cont, y)` for train and valid."""
    train, valid = dls.train.loader, getattr(dls.valid, "loader", None)
    if valid is None:
        raise ValueError("the benchmark needs a validation split")
    return train.tensors, valid.tensors  # type: ignore[attr-defined]


def baseline_fit(model: nn.Module, train: Tensors, valid: Tensors) -> None:
    """One epoch of the loop a person writes by hand, then a validation pass."""
    opt = torch.optim.AdamW(param_groups(model, wd=WD), lr=LR, betas=BETAS, eps=EPS)
    n_train = len(train[0]) // BS * BS  # drop_last, as the shuffled training loader does
    model.train()
    order = torch.randperm(len(train[0]), device=train[0].device)
    x_cat, x_cont, y = (t[order] for t in train)
    train_loss = torch.zeros((), device=y.device)
    for start in range(0, n_train, BS):
        stop = start + BS
        loss = nn.functional.cross_entropy(
            model(x_cat[start:stop], x_cont[start:stop]), y[start:stop]
        )
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        train_loss += loss.detach()
    model.eval()
    valid_loss = torch.zeros((), device=y.device)
    with torch.no_grad():
        for start in range(0, len(valid[0]), 2 * BS):
            parts = [t[start : start + 2 * BS] for t in valid]
            valid_loss += nn.functional.cross_entropy(model(*parts[:2]), parts[2], reduction="sum")
    _ = (train_loss.item(), valid_loss.item())  # the one read per epoch


def timed(fn: Callable[[], object], seed: int) -> float:
    """Seconds of `fn`, from a fresh seed and a collected heap."""
    torch.manual_seed(seed)
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_pair(
    dls: TabularDataLoaders, template: nn.Module, seed: int, mentor_first: bool
) -> tuple[float, float]:
    """One-epoch fits of both sides from the same weights: (baseline s, mentor s)."""
    base_model = copy.deepcopy(template)
    learn: Learner = tabular_learner(dls, layers=[200, 100], opt_func=Adam, lr=LR, wd=WD)
    learn.model.load_state_dict(template.state_dict())
    learn.progress.show = False
    train, valid = prepared_tensors(dls)

    def base_fit() -> None:
        baseline_fit(base_model, train, valid)

    def mentor_fit() -> None:
        learn.fit(1, LR)

    if mentor_first:
        mentor = timed(mentor_fit, seed)
        return timed(base_fit, seed), mentor
    base = timed(base_fit, seed)
    return base, timed(mentor_fit, seed)


def measure(dls: TabularDataLoaders, runs: int = 5, warmup: int = 1) -> BenchResult:
    """`warmup` untimed pairs, then `runs` timed pairs of one-epoch fits, alternating order."""
    torch.manual_seed(0)
    template = tabular_learner(dls, layers=[200, 100]).model
    result = BenchResult()
    for index in range(warmup + runs):
        base, mentor = run_pair(dls, template, seed=index, mentor_first=index % 2 == 1)
        if index >= warmup:
            result.baseline.append(base)
            result.mentor.append(mentor)
    return result


def inference_figures(df: pd.DataFrame, dls: TabularDataLoaders) -> str:
    """Predict one row (median of 100 after 10 warm-up) and get_preds rows per second."""
    learn = tabular_learner(dls, layers=[200, 100])
    learn.progress.show = False
    row = df.iloc[0]
    for _ in range(10):
        learn.predict(row)
    times = []
    for _ in range(100):
        start = time.perf_counter()
        learn.predict(row)
        times.append(time.perf_counter() - start)
    rows = df.iloc[:10_000]
    preds_s = median_time(lambda: learn.get_preds(dl=dls.test_dl(rows)), repeats=5)
    return (
        f"predict one row: {statistics.median(times) * 1e3:.2f} ms (median of 100); "
        f"get_preds on 10,000 rows (test_dl included): {10_000 / preds_s:,.0f} rows/s"
    )


def main(argv: Sequence[str] | None = None) -> BenchResult:
    """Measure and print the training ratio, preprocessing time, predict and get_preds."""
    parser = argparse.ArgumentParser(description="tabular_learner against a hand-written loop.")
    parser.add_argument("--quick", action="store_true", help="1 timed run per side")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per side (5)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    df = pd.read_csv(data_path("adult_sample") / "adult.csv")
    runs = args.runs or (1 if args.quick else 5)
    dls = adult_dls(df, bs=BS)
    prep_s = median_time(lambda: adult_dls(df, bs=BS), repeats=5)
    print(f"machine: {machine()}")
    print(f"device: {dls.device}; load average before: {os.getloadavg()[0]:.2f}")
    print(f"data: {len(df)} rows; preprocessing + loaders: {prep_s:.3f} s (median of 5)")
    result = measure(dls, runs)
    print(result.line())
    print(inference_figures(df, dls))
    print(f"load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    return result


if __name__ == "__main__":
    main()
