"""Segmentation: training the efficientnet_lite0 U-Net through `Learner` against a
hand-written PyTorch loop.

Both sides train copies of the same `unet_model("efficientnet_lite0", n_out=32)` (encoder
from scratch: the weights do not change the speed) on the same camvid_tiny batches, prepared
once by `SegmentationDataLoaders` at 96 x 128 and batch size 8 (so data loading is out of the
comparison), with the same optimizer (`torch.optim.AdamW` over `mentor.optim.param_groups`
with mentor's Adam defaults), the same loss (cross-entropy over the class axis) and constant
learning rate, and a validation pass each epoch. The hand-written loop keeps its loss sums
on the device and reads them once per epoch, as the Learner does.

Runs alternate (baseline, mentor, mentor, baseline, ...) after one warm-up pair; the ratio
is median(mentor) / median(baseline) of the seconds per epoch (target <= 1.05).

Run: `python -m bench.segmentation` (about 3 minutes on 2 cores), or `--quick`.
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

from bench.common import PairedRuns, machine, spread
from mentor.core.paths import data_path
from mentor.core.seed import set_seed
from mentor.data.items import get_image_files
from mentor.data.loaders import DataLoaders
from mentor.optim import Adam, param_groups
from mentor.train.learner import Learner
from mentor.train.losses import CrossEntropyLossFlat
from mentor.vision.data import SegmentationDataLoaders
from mentor.vision.models.unet import unet_model
from mentor.vision.resize import Resize

BETAS, EPS, WD, LR = (0.9, 0.99), 1e-5, 0.01, 1e-3  # mentor's Adam defaults, spelled out
TARGET = 1.05
Batches = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class RunResult:
    """Seconds per epoch of one training run and its last validation loss."""

    seconds: float
    valid_loss: float


@dataclass
class BenchResult(PairedRuns):
    """The timed runs of both sides: `Learner.fit` against the hand-written loop."""

    size: tuple[int, int]

    def line(self) -> str:
        """The printed summary (two lines)."""
        verdict = "PASS" if self.ratio <= TARGET else "MISS"
        return (
            f"segmentation U-Net {self.size[0]}x{self.size[1]}: baseline {self.baseline_s:.3f} "
            f"s/epoch, mentor {self.mentor_s:.3f} s/epoch, ratio {self.ratio:.3f} (target <= "
            f"{TARGET}) {verdict}\n      runs: baseline {spread(self.baseline)}, mentor "
            f"{spread(self.mentor)}; valid loss baseline {self.baseline[-1].valid_loss:.4f} / "
            f"mentor {self.mentor[-1].valid_loss:.4f}"
        )


def prepared_batches(size: tuple[int, int], n_images: int | None) -> tuple[Batches, Batches]:
    """camvid_tiny's training and validation batches, transformed once, as tensors."""
    path = data_path("camvid_tiny")
    codes = (path / "codes.txt").read_text().split()
    dls = SegmentationDataLoaders.from_label_func(
        path, get_image_files(path / "images")[:n_images],
        lambda o: path / "labels" / f"{o.stem}_P{o.suffix}", codes=codes, valid_pct=0.2,
        seed=42, item_tfms=Resize(size), bs=8, num_workers=0, device="cpu",
    )  # fmt: skip
    return [tuple(b) for b in dls.train], [tuple(b) for b in dls.valid]  # type: ignore[misc]


def baseline_fit(model: nn.Module, train: Batches, valid: Batches, n_epoch: int) -> float:
    """The loop a person writes by hand; returns the last epoch's validation loss."""
    opt = torch.optim.AdamW(param_groups(model, wd=WD), lr=LR, betas=BETAS, eps=EPS)
    loss_fn = nn.CrossEntropyLoss()
    valid_loss = float("nan")
    for _ in range(n_epoch):
        model.train()
        train_sum = torch.zeros(())
        for xb, yb in train:
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            train_sum += loss.detach() * len(yb)
        model.eval()
        valid_sum, count = torch.zeros(()), 0
        with torch.no_grad():
            for xb, yb in valid:
                valid_sum += loss_fn(model(xb), yb) * len(yb)
                count += len(yb)
        _, valid_loss = train_sum.item(), (valid_sum / count).item()  # the one read per epoch
    return valid_loss


def timed(fn: Callable[[], float], seed: int, n_epoch: int) -> RunResult:
    """Run `fn` from a fresh seed and a collected heap; seconds per epoch and its loss."""
    set_seed(seed)
    gc.collect()
    start = time.perf_counter()
    loss = fn()
    return RunResult((time.perf_counter() - start) / n_epoch, loss)


def measure(
    size: tuple[int, int] = (96, 128),
    n_images: int | None = None,
    runs: int = 5,
    warmup: int = 1,
    n_epoch: int = 1,
) -> BenchResult:
    """`warmup` untimed pairs, then `runs` timed pairs of runs, alternating the order."""
    train, valid = prepared_batches(size, n_images)
    set_seed(0)
    model = unet_model("efficientnet_lite0", n_out=32, img_size=size)
    result = BenchResult(size=size)
    for index in range(warmup + runs):
        base_model = copy.deepcopy(model)
        learn = Learner(DataLoaders(train, valid), copy.deepcopy(model),
                        CrossEntropyLossFlat(axis=1), opt_func=Adam, lr=LR, wd=WD)  # fmt: skip
        learn.progress.show = False

        def mentor_fit(learn: Learner = learn) -> float:
            learn.fit(n_epoch, LR)
            return float(learn.recorder.values[-1]["valid_loss"])

        def base_fit(base_model: nn.Module = base_model) -> float:
            return baseline_fit(base_model, train, valid, n_epoch)

        if index % 2 == 1:
            mentor = timed(mentor_fit, index, n_epoch)
            base = timed(base_fit, index, n_epoch)
        else:
            base = timed(base_fit, index, n_epoch)
            mentor = timed(mentor_fit, index, n_epoch)
        if index >= warmup:
            result.baseline.append(base)
            result.mentor.append(mentor)
    return result


def main(argv: Sequence[str] | None = None) -> BenchResult:
    """Measure and print the ratio, both medians, both validation losses and the machine."""
    parser = argparse.ArgumentParser(description="unet training against a hand-written loop.")
    parser.add_argument("--quick", action="store_true", help="1 run per side, 24 images at 48x64")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per side (5)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    size, n_images = ((48, 64), 24) if args.quick else ((96, 128), None)
    runs = args.runs or (1 if args.quick else 5)
    print(f"machine: {machine()}")
    print(f"load average before: {os.getloadavg()[0]:.2f}; {runs} runs per side")
    result = measure(size, n_images, runs)
    print(result.line())
    print(f"load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    return result


if __name__ == "__main__":
    main()
