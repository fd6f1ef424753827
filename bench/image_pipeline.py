"""Image loading throughput: a `DataBlock`'s loader against a per-item Pillow pipeline.

Both sides read the 2,000 training JPEGs of `imagenette_small` (224x224) and yield
normalized, augmented float batches `[64, 3, 128, 128]` with integer labels, from two worker
processes started afresh for every pass (no persistent workers), dropping the last partial
batch:

- mentor: `DataBlock(ImageBlock, CategoryBlock)` with `RandomResizedCrop(128)` as item
  transform (decoded and cropped in the workers, collated as uint8) and
  `[*aug_transforms(), Normalize.from_stats(*imagenet_stats)]` as batch transforms (run on
  the device, here the CPU, in the main process).
- baseline: a plain `Dataset` doing the same work per item with Pillow and torch: full decode,
  random resized crop (scale (0.08, 1), ratio (3/4, 4/3)), flip (p=0.5), one affine
  transform for rotation (up to 10 degrees) and zoom (up to 1.1), one perspective transform
  (tilt up to 0.2), each drawn with p=0.75 like `aug_transforms`; then a float tensor in
  [0, 1], brightness (+-0.2) and contrast (factor in [0.8, 1.25], log-uniform) with p=0.75,
  normalized with the ImageNet statistics; a plain `DataLoader` with default collation.

The only difference left is what shows outside the image after a rotation or a warp: mentor
reflects the image, Pillow fills with black (cheaper, if anything).

One untimed pass of each side, then `runs` timed passes alternating the order (baseline,
mentor; mentor, baseline; ...). Rates are images yielded / wall time of one full pass,
worker start-up included, reading every batch once as a training step would (a batch made
in a worker is shared memory that the main process pays to map in when it reads it). The
ratio is median(mentor rate) / median(baseline rate), and must reach 1.3.

Run: `python -m bench.image_pipeline` (about 15 s on 2 CPU cores), or `--quick` for a smoke
run on 256 images.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from bench.common import machine
from mentor.data.blocks import CategoryBlock
from mentor.data.datablock import DataBlock
from mentor.data.external import untar_data
from mentor.data.items import get_image_files
from mentor.data.labels import parent_label
from mentor.data.splitters import GrandparentSplitter
from mentor.data.transforms import Normalize, imagenet_stats
from mentor.vision.augment import aug_transforms
from mentor.vision.blocks import ImageBlock
from mentor.vision.resize import RandomResizedCrop

SIZE, BS, WORKERS = 128, 64, 2
TARGET = 1.3
QUICK_ITEMS = 256  # training images of a --quick run
P_AFFINE, P_LIGHTING, P_FLIP = 0.75, 0.75, 0.5
MAX_ROTATE, MAX_ZOOM, MAX_WARP, MAX_LIGHTING = 10.0, 1.1, 0.2, 0.2
MEAN = torch.tensor(imagenet_stats[0]).view(3, 1, 1)
STD = torch.tensor(imagenet_stats[1]).view(3, 1, 1)


# ----- the baseline: what a person writes without the library -----
def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """A random crop of 8-100% of the area with aspect ratio in [3/4, 4/3] (log-uniform);
    the whole image when 10 draws don't fit."""
    for _ in range(10):
        area = width * height * random.uniform(0.08, 1.0)
        aspect = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
        crop_w, crop_h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            left, top = random.randint(0, width - crop_w), random.randint(0, height - crop_h)
            return left, top, left + crop_w, top + crop_h
    return 0, 0, width, height


def affine_coeffs(degrees: float, zoom: float, size: int) -> tuple[float, ...]:
    """Pillow AFFINE data (output pixel -> input pixel): rotate and zoom about the centre."""
    radians, centre = math.radians(degrees), size / 2
    cos, sin = math.cos(radians) / zoom, math.sin(radians) / zoom
    return (
        cos, -sin, centre - cos * centre + sin * centre,
        sin, cos, centre - sin * centre - cos * centre,
    )  # fmt: skip


def perspective_coeffs(tilt_x: float, tilt_y: float, size: int) -> tuple[float, ...]:
    """Pillow PERSPECTIVE data: in coordinates u, v in [-1, 1] from the centre, output (u, v)
    reads input (u, v) / (1 + tilt_x * u + tilt_y * v)."""
    half = size / 2
    const = 1 - tilt_x - tilt_y
    shift = -half * (tilt_x + tilt_y)
    coeffs = (1 + tilt_x, tilt_y, shift, tilt_x, 1 + tilt_y, shift)
    return (*(c / const for c in coeffs), tilt_x / (half * const), tilt_y / (half * const))


class PillowAugDataset(Dataset[tuple[torch.Tensor, int]]):
    """Decode, random-resized-crop, flip, rotate/zoom, warp, lighting, normalize: per item."""

    def __init__(self, files: Sequence[Path], labels: Sequence[int], size: int = SIZE) -> None:
        self.files, self.labels, self.size = list(files), list(labels), size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        size = self.size
        img = Image.open(self.files[index]).convert("RGB")
        box = crop_box(*img.size)
        img = img.crop(box).resize((size, size), Image.Resampling.BILINEAR)
        if random.random() < P_FLIP:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        degrees = random.uniform(-MAX_ROTATE, MAX_ROTATE) if random.random() < P_AFFINE else 0.0
        zoom = random.uniform(1.0, MAX_ZOOM) if random.random() < P_AFFINE else 1.0
        if degrees != 0.0 or zoom != 1.0:
            coeffs = affine_coeffs(degrees, zoom, size)
            img = img.transform(img.size, Image.Transform.AFFINE, coeffs, Image.BILINEAR)
        if random.random() < P_AFFINE:
            tilt = (random.uniform(-MAX_WARP, MAX_WARP), random.uniform(-MAX_WARP, MAX_WARP))
            coeffs = perspective_coeffs(*tilt, size)
            img = img.transform(img.size, Image.Transform.PERSPECTIVE, coeffs, Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
        if random.random() < P_LIGHTING:
            x = (x + random.uniform(-MAX_LIGHTING, MAX_LIGHTING)).clamp(0, 1)
        if random.random() < P_LIGHTING:
            log_max = -math.log(1 - MAX_LIGHTING)
            factor, mean = math.exp(random.uniform(-log_max, log_max)), x.mean()
            x = ((x - mean) * factor + mean).clamp(0, 1)
        return (x - MEAN) / STD, self.labels[index]


def baseline_loader(files: Sequence[Path]) -> DataLoader[Any]:
    """The plain `DataLoader` over `PillowAugDataset` (labels from the parent folder)."""
    classes = sorted({f.parent.name for f in files})
    index = {name: i for i, name in enumerate(classes)}
    ds = PillowAugDataset(files, [index[f.parent.name] for f in files])
    return DataLoader(
        ds, batch_size=BS, shuffle=True, num_workers=WORKERS, drop_last=True,
        persistent_workers=False,
    )  # fmt: skip


# ----- mentor -----
def _subset(path: Path, n_train: int | None) -> list[Path]:
    """The image files of `path`; only `n_train` training images (the same random ones on
    every call) when given."""
    files = get_image_files(path)
    if n_train is None:
        return files
    train = [f for f in files if f.parent.parent.name == "train"]
    return random.Random(0).sample(train, n_train) + [f for f in files if f not in train]


def mentor_loaders(path: Path, n_train: int | None = None) -> Any:
    """The `DataLoaders` of the benchmark's `DataBlock` (CPU, `WORKERS` workers)."""
    block = DataBlock(
        blocks=(ImageBlock(), CategoryBlock),
        get_items=partial(_subset, n_train=n_train),
        get_y=parent_label,
        splitter=GrandparentSplitter(valid_name="val"),
        item_tfms=[RandomResizedCrop(SIZE)],
        batch_tfms=[*aug_transforms(), Normalize.from_stats(*imagenet_stats)],
    )
    return block.dataloaders(path, bs=BS, num_workers=WORKERS, device="cpu")


# ----- measuring -----
@dataclass
class Pass:
    """One full pass over a loader: images yielded, wall time, and its last batch."""

    images: int
    seconds: float
    batch: tuple[torch.Tensor, torch.Tensor]

    @property
    def rate(self) -> float:
        """Images per second."""
        return self.images / self.seconds


def timed_pass(loader: Iterable[Any]) -> Pass:
    """Iterate `loader` once (worker start-up included), counting the images and reading
    every batch once, as a model's first layer would."""
    gc.collect()
    images, last = 0, None
    start = time.perf_counter()
    for xb, yb in loader:
        # A batch made in a worker arrives as shared memory that is only mapped in when read;
        # leaving it unread would hide part of the cost of moving it to the main process.
        xb.sum()
        images += len(xb)
        last = (xb, yb)
    seconds = time.perf_counter() - start
    if last is None:
        raise ValueError("the loader yielded no batch; the data set is smaller than a batch")
    return Pass(images, seconds, last)


@dataclass
class Result:
    """The timed passes of both sides."""

    baseline: list[Pass] = field(default_factory=list)
    mentor: list[Pass] = field(default_factory=list)

    @property
    def baseline_rate(self) -> float:
        """Median images per second of the Pillow pipeline."""
        return statistics.median(p.rate for p in self.baseline)

    @property
    def mentor_rate(self) -> float:
        """Median images per second of mentor's loader."""
        return statistics.median(p.rate for p in self.mentor)

    @property
    def ratio(self) -> float:
        """median(mentor rate) / median(baseline rate): above 1, mentor is faster."""
        return self.mentor_rate / self.baseline_rate

    @property
    def noisy(self) -> bool:
        """Whether other work visibly disturbed the runs (a pass over 1.5x the fastest)."""
        seconds = [[p.seconds for p in side] for side in (self.baseline, self.mentor)]
        return any(max(side) > 1.5 * min(side) for side in seconds)

    def lines(self) -> list[str]:
        """The printed summary: rates, ratio and verdict, the spread of the runs."""
        verdict = "PASS" if self.ratio >= TARGET else "MISS"
        lines = [
            f"baseline (Pillow per item): {self.baseline_rate:7.1f} img/s",
            f"mentor (DataBlock):         {self.mentor_rate:7.1f} img/s",
            f"ratio mentor/baseline {self.ratio:.3f} (target >= {TARGET}) {verdict}",
            f"runs: baseline {_spread(self.baseline)}, mentor {_spread(self.mentor)}",
        ]
        if self.noisy:
            lines.append("noisy: a pass took over 1.5x the fastest; rerun on a quiet machine")
        return lines


def _spread(passes: list[Pass]) -> str:
    return ", ".join(f"{p.rate:.0f}" for p in passes) + " img/s"


def measure(path: Path, n_train: int | None = None, runs: int = 3, warmup: int = 1) -> Result:
    """`warmup` untimed passes of each side, then `runs` timed passes of each, alternating."""
    dls = mentor_loaders(path, n_train)
    baseline = baseline_loader(list(dls.train_ds.items))  # the same training images
    result = Result()
    for index in range(warmup + runs):
        sides = [(baseline, result.baseline), (dls.train, result.mentor)]
        for loader, passes in sides[:: -1 if index % 2 else 1]:
            done = timed_pass(loader)
            if index >= warmup:
                passes.append(done)
    return result


def batch_stats(name: str, batch: tuple[torch.Tensor, torch.Tensor]) -> str:
    """One line: shape, dtype and per-channel mean / std of a batch's images."""
    xb, yb = batch
    mean, std = xb.mean(dim=(0, 2, 3)), xb.std(dim=(0, 2, 3))
    return (
        f"{name:<8} batch {list(xb.shape)} {xb.dtype}, labels {yb.dtype}; "
        f"channel mean {_floats(mean)}, std {_floats(std)}"
    )


def _floats(values: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:+.2f}" for v in values.tolist()) + "]"


def main(argv: Sequence[str] | None = None) -> Result:
    """Measure both loaders and print their rates and the ratio; returns the result."""
    parser = argparse.ArgumentParser(description="DataBlock loader against a Pillow pipeline.")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ITEMS} images, 1 run")
    parser.add_argument("--runs", type=int, default=None, help="timed passes per side (3)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    n_train = QUICK_ITEMS if args.quick else None
    path = untar_data("imagenette_small")
    print(f"machine: {machine()}")
    print(
        f"data: imagenette_small, {n_train or 'all'} train images; bs={BS}, "
        f"size {SIZE}, {WORKERS} workers; {runs} runs per side after 1 warm-up"
    )
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cores:
        print(f"note: load average {load:.2f} on {cores} cores before the run: may be noisy")
    result = measure(path, n_train, runs)
    print(batch_stats("baseline", result.baseline[-1].batch))
    print(batch_stats("mentor", result.mentor[-1].batch))
    for line in result.lines():
        print(line, flush=True)
    return result


if __name__ == "__main__":
    main()
