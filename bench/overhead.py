"""Training-loop overhead: `Learner.fit` against a hand-written PyTorch loop.

Both sides train the same model (the same initial weights), on the same in-memory tensors
(MNIST 3 vs 7), in the same batch order (tensor slices, reshuffled every epoch from the same
seed), with the same optimizer (`torch.optim.AdamW` over `mentor.optim.param_groups`: weight
decay 0.01, none on biases and batch-norm weights; betas (0.9, 0.99), eps 1e-5), the same
loss (`nn.CrossEntropyLoss`), batch size, epochs and constant learning rate, and a
validation pass with loss and accuracy every epoch. The hand-written loop keeps its sums on
the device and reads them once per epoch, as the Learner does.

Two cases: the small CNN at bs=128, where compute dominates (target ratio <= 1.05), and a
tiny MLP at bs=64, where the per-batch Python of the loop dominates (target <= 1.15). Runs
alternate (baseline, mentor, baseline, ...) after one warm-up run of each; the ratio is
median(mentor) / median(baseline).

Run: `python -m bench.overhead` (about 20 s on 2 CPU cores), or `--quick` for a smoke run.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from bench.common import PairedRuns, machine, mnist_sample_tensors, small_cnn, spread
from mentor.core.device import default_device
from mentor.data.loaders import DataLoaders
from mentor.optim import Adam, param_groups
from mentor.train.learner import Learner
from mentor.train.metrics import accuracy

Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
# The hyper-parameters of mentor's default `Adam`, spelled out for the hand-written loop.
BETAS, EPS, WD = (0.9, 0.99), 1e-5, 0.01
QUICK_SIZES = (4096, 1024)  # train and valid items of a --quick run


@dataclass
class Case:
    """One comparison: a model, how the images are fed to it, and the training settings."""

    name: str
    make_model: Callable[[], nn.Module]
    flatten: bool
    bs: int
    n_epoch: int
    lr: float
    target: float
    channels_last: bool = False  # mentor's side runs `learn.to_channelslast()`


@dataclass
class RunResult:
    """The wall time of one training run and the accuracy it reached."""

    seconds: float
    accuracy: float


@dataclass
class CaseResult(PairedRuns):
    """All timed runs (`RunResult`s) of both sides of one case: `Learner.fit` against the
    hand-written loop."""

    case: Case

    @property
    def fastest_ratio(self) -> float:
        """min(mentor) / min(baseline): less sensitive to other work on a busy machine."""
        return min(r.seconds for r in self.mentor) / min(r.seconds for r in self.baseline)

    def line(self) -> str:
        """The printed summary of the case (two lines, three when the runs were noisy)."""
        verdict = "PASS" if self.ratio <= self.case.target else "MISS"
        acc_base, acc_mentor = self.baseline[-1].accuracy, self.mentor[-1].accuracy
        lines = [
            f"{self.case.name:<4} bs={self.case.bs:<4}: baseline {self.baseline_s:.3f} s, "
            f"mentor {self.mentor_s:.3f} s, ratio {self.ratio:.3f} "
            f"(target <= {self.case.target:.2f}) {verdict}",
            f"     runs: baseline {spread(self.baseline)}, mentor {spread(self.mentor)}, "
            f"fastest-run ratio {self.fastest_ratio:.3f}; "
            f"valid accuracy {acc_base:.4f} / {acc_mentor:.4f}",
        ]
        if self.noisy:
            lines.append("     noisy: a run took over 1.5x the fastest; rerun on a quiet machine")
        return "\n".join(lines)

    @property
    def noisy(self) -> bool:
        """Whether other work visibly disturbed the runs (the slowest over 1.5x the fastest)."""
        seconds = [[r.seconds for r in side] for side in (self.baseline, self.mentor)]
        return any(max(side) > 1.5 * min(side) for side in seconds)


def tiny_mlp(n_in: int = 784, n_hidden: int = 32, n_out: int = 2) -> nn.Module:
    """A one-hidden-layer MLP so small that the loop's per-batch cost dominates."""
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))


CASES = (
    Case("cnn", small_cnn, flatten=False, bs=128, n_epoch=1, lr=1e-2, target=1.05),
    Case("mlp", tiny_mlp, flatten=True, bs=64, n_epoch=2, lr=1e-2, target=1.15),
)


def baseline_fit(model: nn.Module, data: Tensors, bs: int, n_epoch: int, lr: float) -> float:
    """The loop a person writes by hand; returns the last epoch's validation accuracy."""
    x_train, y_train, x_valid, y_valid = data
    loss_func = nn.CrossEntropyLoss()
    opt = torch.optim.AdamW(param_groups(model, wd=WD), lr=lr, betas=BETAS, eps=EPS)
    n_train, n_valid, valid_bs = len(x_train), len(x_valid), 2 * bs
    for _ in range(n_epoch):
        model.train()
        order = torch.randperm(n_train, device=x_train.device)
        x_shuffled, y_shuffled = x_train[order], y_train[order]
        train_loss = torch.zeros((), device=x_train.device)
        for start in range(0, n_train, bs):
            xb, yb = x_shuffled[start : start + bs], y_shuffled[start : start + bs]
            loss = loss_func(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            train_loss += loss.detach() * len(yb)
        model.eval()
        valid_loss = torch.zeros((), device=x_valid.device)
        correct = torch.zeros((), device=x_valid.device, dtype=torch.long)
        with torch.no_grad():
            for start in range(0, n_valid, valid_bs):
                xb, yb = x_valid[start : start + valid_bs], y_valid[start : start + valid_bs]
                pred = model(xb)
                valid_loss += loss_func(pred, yb) * len(yb)
                correct += (pred.argmax(dim=-1) == yb).sum()
        # The one read per epoch, as a script printing its progress would do.
        _ = (train_loss / n_train).item(), (valid_loss / n_valid).item()
        valid_accuracy = correct.item() / n_valid
    return valid_accuracy


def make_learner(
    model: nn.Module, data: Tensors, bs: int, lr: float, channels_last: bool = False
) -> Learner:
    """A Learner as a script would build it, with the progress output silenced."""
    x_train, y_train, x_valid, y_valid = data
    dls = DataLoaders.from_tensors((x_train, y_train), (x_valid, y_valid), bs=bs)
    loss_func = nn.CrossEntropyLoss()
    learn = Learner(dls, model, loss_func, opt_func=Adam, lr=lr, wd=WD, metrics=[accuracy])
    learn.progress.show = False
    return learn.to_channelslast() if channels_last else learn


def timed(fn: Callable[[], float], seed: int) -> RunResult:
    """Run `fn` from a fresh seed and a collected heap; its wall time and returned accuracy."""
    torch.manual_seed(seed)
    gc.collect()
    start = time.perf_counter()
    acc = fn()
    return RunResult(time.perf_counter() - start, acc)


def run_pair(
    case: Case, model: nn.Module, data: Tensors, seed: int, mentor_first: bool = False
) -> tuple[RunResult, RunResult]:
    """A baseline run and a mentor run from the same weights and the same batch order.

    Returns (baseline, mentor); `mentor_first` runs the mentor side first.
    """
    base_model = copy.deepcopy(model)
    learn = make_learner(copy.deepcopy(model), data, case.bs, case.lr, case.channels_last)

    def base_fit() -> float:
        return baseline_fit(base_model, data, case.bs, case.n_epoch, case.lr)

    def mentor_fit() -> float:
        learn.fit(case.n_epoch, case.lr)
        return learn.recorder.values[-1]["accuracy"]

    if mentor_first:
        mentor = timed(mentor_fit, seed)
        return timed(base_fit, seed), mentor
    base = timed(base_fit, seed)
    return base, timed(mentor_fit, seed)


def measure(case: Case, data: Tensors, runs: int = 5, warmup: int = 1) -> CaseResult:
    """`warmup` untimed pairs of runs, then `runs` timed pairs of one case."""
    device = default_device()
    x_train, y_train, x_valid, y_valid = (t.to(device) for t in data)
    if case.flatten:
        x_train, x_valid = x_train.flatten(1), x_valid.flatten(1)
    data = (x_train, y_train, x_valid, y_valid)
    torch.manual_seed(0)
    model = case.make_model().to(device)
    result = CaseResult(case)
    for index in range(warmup + runs):
        # Order A-B, B-A, A-B, ...: neither side always runs right after the other.
        base, mentor = run_pair(case, model, data, seed=index, mentor_first=index % 2 == 1)
        if index >= warmup:
            result.baseline.append(base)
            result.mentor.append(mentor)
    return result


def slice_data(data: Tensors, n_train: int, n_valid: int) -> Tensors:
    """A random subset of each split, the same on every call (for quick runs)."""
    gen = torch.Generator().manual_seed(0)
    x_train, y_train, x_valid, y_valid = data
    train_idx = torch.randperm(len(x_train), generator=gen)[:n_train]
    valid_idx = torch.randperm(len(x_valid), generator=gen)[:n_valid]
    return x_train[train_idx], y_train[train_idx], x_valid[valid_idx], y_valid[valid_idx]


def main(argv: Sequence[str] | None = None) -> list[CaseResult]:
    """Measure every case and print the ratios; returns the results."""
    parser = argparse.ArgumentParser(description="Learner.fit against a hand-written loop.")
    parser.add_argument("--quick", action="store_true", help="1 run per side, data slice")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per side (5)")
    args = parser.parse_args(argv)
    data: Tensors = mnist_sample_tensors()
    if args.quick:
        data = slice_data(data, *QUICK_SIZES)
    runs = args.runs or (1 if args.quick else 5)
    print(f"machine: {machine()}")
    print(f"device: {default_device()}, torch threads: {torch.get_num_threads()}")
    print(f"data: {len(data[0])} train / {len(data[2])} valid; {runs} runs per side")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cores:
        print(f"note: load average {load:.2f} on {cores} cores before the run: may be noisy")
    return measure_all(CASES, data, runs)


def measure_all(cases: Sequence[Case], data: Tensors, runs: int) -> list[CaseResult]:
    """`measure` each case in turn, printing its lines as soon as it is done."""
    results = []
    for case in cases:
        result = measure(case, data, runs)
        print(result.line(), flush=True)
        results.append(result)
    return results


if __name__ == "__main__":
    main()
