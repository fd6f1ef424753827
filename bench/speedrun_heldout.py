"""The automatic recipes on data sets kept aside from `bench.speedrun`'s tasks.

`mentor train`'s automatic choices (batch size from the number of rows, model, image size and
augmentation from the images, the rate from lr_find) were written against rules, not against
the speedrun's five tasks; this run checks them on four other data sets, each against the
choice a user would otherwise have made (the previous defaults, or the obvious alternative):

- bike_sharing `hour.csv`, regression of `count` (without `casual` and `registered`, which
  sum to it), 17,379 rows: the automatic batch size (256) against 64;
- scikit-learn's breast cancer table, 569 rows: the automatic batch size stays 64, so only
  the epochs' figures are shown;
- movie_lens_sample `ratings.csv`, 6,031 ratings: likewise 64;
- scikit-learn's 1,797 handwritten digits (8x8 px) written as PNG files, a from-scratch image
  task: `small_cnn` trained from scratch at 8 px against EfficientNet-Lite0 from its ImageNet
  weights at 64 px (the previous default, at a quarter of its 224 px).

Each runs `mentor train`'s own builders and fits (see `bench.speedrun_tasks.auto`) with seeds
0, 1, 2, on a 20% random validation split drawn from the seed, for the command's default 4
epochs; the medians of the last epoch's validation metric and of the time are printed.

Run: `python -m bench.speedrun_heldout` (about 3 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from bench.common import machine
from bench.speedrun_clock import Run, Target, timed
from bench.speedrun_tasks import auto
from mentor.core.paths import data_path

NEVER = 1e9  # a target no run reaches: every run trains all its epochs


def bike_csv(folder: Path) -> Path:
    """hour.csv without the two columns that sum to the target."""
    df = pd.read_csv(data_path("bike_sharing") / "hour.csv")
    df = df.drop(columns=[c for c in ("casual", "registered", "instant") if c in df.columns])
    out = folder / "bike.csv"
    df.to_csv(out, index=False)
    return out


def cancer_csv(folder: Path) -> Path:
    """scikit-learn's breast cancer table with a `diagnosis` column."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    df = data.frame.rename(columns={"target": "diagnosis"})
    df["diagnosis"] = df["diagnosis"].map({0: "malignant", 1: "benign"})
    out = folder / "cancer.csv"
    df.to_csv(out, index=False)
    return out


def digits_folder(folder: Path) -> Path:
    """scikit-learn's 8x8 digits as greyscale PNGs in `<label>/` folders."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = folder / "digits"
    for index, (image, label) in enumerate(zip(digits.images, digits.target)):
        target = root / str(label)
        target.mkdir(parents=True, exist_ok=True)
        pixels = (image * (255 / 16)).round().astype(np.uint8)
        Image.fromarray(pixels, "L").save(target / f"{index:04d}.png")
    return root


def checks(folder: Path) -> list[tuple[str, str, Target, list[str]]]:
    """(data set, choice, metric, `mentor train` arguments) of each comparison."""
    bike, cancer = str(bike_csv(folder)), str(cancer_csv(folder))
    digits = str(digits_folder(folder))
    ratings = str(data_path("movie_lens_sample") / "ratings.csv")
    loss, acc = Target("valid_loss", -NEVER, higher_is_better=False), Target("accuracy", NEVER)
    count = ["--target", "count", "--regression"]
    return [
        ("bike_sharing", "auto (bs 256)", loss, ["tabular", bike, *count]),
        ("bike_sharing", "bs 64", loss, ["tabular", bike, *count, "--bs", "64"]),
        ("breast_cancer", "auto (bs 64)", acc, ["tabular", cancer, "--target", "diagnosis"]),
        ("movie_lens_sample", "auto (bs 64)", loss, ["collab", ratings]),
        ("digits 8 px", "auto (small_cnn)", acc, ["image", digits]),
        ("digits 8 px", "lite0 64 px", acc,
         ["image", digits, "--arch", "efficientnet_lite0", "--size", "64"]),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict[tuple[str, str], list[Run]]:
    """Run every comparison and print one line each; returns the runs."""
    parser = argparse.ArgumentParser(description="The automatic recipes on kept-aside data.")
    parser.add_argument("--runs", type=int, default=3, help="seeds per recipe (3)")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    results: dict[tuple[str, str], list[Run]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, choice, target, words in checks(Path(tmp)):
            runs = [timed(auto(*words), target, seed) for seed in range(args.runs)]
            results[(name, choice)] = runs
            metric = statistics.median(r.metric for r in runs)
            seconds = statistics.median(r.seconds for r in runs)
            print(
                f"{name:<18} {choice:<17} {target.metric} {metric:.4f}  {seconds:6.1f} s  "
                f"(epochs {'/'.join(str(r.epochs) for r in runs)})",
                flush=True,
            )
    return results


if __name__ == "__main__":
    main()
