"""Data and timing helpers shared by the benchmarks (and the tests that need real images)."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from mentor.data.external import cache_dir, untar_data


def mnist_sample_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """MNIST 3 vs 7 (`mnist_sample.tar`) as float tensors in [0, 1], labels 0 (3) and 1 (7).

    Returns `(x_train [12396, 1, 28, 28], y_train, x_valid [2038, 1, 28, 28], y_valid)`; the
    decoded tensors are cached next to the extracted images.
    """
    cached = cache_dir() / "tensors" / "mnist_sample.pt"
    if cached.exists():
        saved = torch.load(cached, weights_only=True)
    else:
        root = untar_data("mnist_sample")
        saved = {}
        for split in ("train", "valid"):
            images, labels = [], []
            for label, digit in enumerate(("3", "7")):
                files = sorted((root / split / digit).glob("*.png"))
                images += [np.asarray(Image.open(f).convert("L")) for f in files]
                labels += [label] * len(files)
            saved[f"x_{split}"] = torch.from_numpy(np.stack(images)).unsqueeze(1)
            saved[f"y_{split}"] = torch.tensor(labels)
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.save(saved, cached)
    return (
        saved["x_train"].float() / 255,
        saved["y_train"],
        saved["x_valid"].float() / 255,
        saved["y_valid"],
    )


def median_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """The median wall time of `repeats` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass(kw_only=True)
class PairedRuns:
    """The timed runs of a benchmark's two sides, each run with a `seconds` attribute:
    the hand-written baseline and mentor, and their medians and ratio."""

    baseline: list[Any] = field(default_factory=list)
    mentor: list[Any] = field(default_factory=list)

    @property
    def baseline_s(self) -> float:
        """Median seconds of the hand-written side."""
        return statistics.median(r.seconds for r in self.baseline)

    @property
    def mentor_s(self) -> float:
        """Median seconds of mentor's side."""
        return statistics.median(r.seconds for r in self.mentor)

    @property
    def ratio(self) -> float:
        """median(mentor) / median(baseline)."""
        return self.mentor_s / self.baseline_s


def spread(runs: list[Any]) -> str:
    """The fastest and slowest of `runs` (objects with `seconds`), as 'a-b s'."""
    seconds = [r.seconds for r in runs]
    return f"{min(seconds):.3f}-{max(seconds):.3f} s"


def machine() -> str:
    """A one-line description of the machine the benchmark ran on."""
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )


def small_cnn(n_out: int = 2) -> torch.nn.Module:
    """The small CNN of the benchmarks and tests: three stride-2 convolutions, 28x28 -> 4x4."""
    from torch import nn

    def conv(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()
        )

    return nn.Sequential(
        conv(1, 8),
        conv(8, 16),
        conv(16, 32),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, n_out),
    )
