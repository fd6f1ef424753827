"""Channels-last memory format: `Learner.fit` after `learn.to_channelslast()` against the
hand-written PyTorch loop of `bench.overhead` (default, contiguous memory format).

The same comparison as `bench.overhead` (same initial weights, batch order, optimizer, loss,
a validation pass each epoch; runs alternate after a warm-up pair; ratio =
median(mentor) / median(baseline)), on convolutional networks at ImageNet-like sizes, where
the memory format decides the speed of the convolutions. The images are random, with the
label given by the sign of the first channel's mean (so there is something to learn).

Run: `python -m bench.channels_last` (about 3 minutes on 2 CPU cores), `--quick` for a smoke
run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from functools import partial

import torch

from bench.common import machine
from bench.overhead import Case, CaseResult, Tensors, measure_all
from mentor.core.device import default_device
from mentor.vision.models import create_model

CASES = (
    Case("efficientnet_lite0 128px", partial(create_model, "efficientnet_lite0", n_out=2),
         flatten=False, bs=32, n_epoch=1, lr=1e-3, target=0.8, channels_last=True),
    Case("resnet50 128px", partial(create_model, "resnet50", n_out=2),
         flatten=False, bs=32, n_epoch=1, lr=1e-3, target=0.9, channels_last=True),
)  # fmt: skip


def random_images(n_train: int, n_valid: int, size: int) -> Tensors:
    """Random RGB images `[N, 3, size, size]`, label 1 where the first channel's mean > 0."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_valid, 3, size, size, generator=gen)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def main(argv: Sequence[str] | None = None) -> list[CaseResult]:
    """Measure every case and print the ratios; returns the results."""
    parser = argparse.ArgumentParser(description="to_channelslast() against a plain loop.")
    parser.add_argument("--quick", action="store_true", help="1 run per side, 32 images")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per side (3)")
    args = parser.parse_args(argv)
    data = random_images(32, 16, 64) if args.quick else random_images(256, 64, 128)
    runs = args.runs or (1 if args.quick else 3)
    print(f"machine: {machine()}")
    print(f"device: {default_device()}; {len(data[0])} train / {len(data[2])} valid images of "
          f"{data[0].shape[-1]} px; {runs} runs per side")  # fmt: skip
    return measure_all(CASES, data, runs)


if __name__ == "__main__":
    main()
