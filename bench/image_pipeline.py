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

A third side is mentor as it was before JPEGs went through simplejpeg: the same loader with
Pillow decoding (the pixels are the same), so one run prints the ratio before and after.

The second part, evaluation, is the pass a fit makes over its validation set every epoch:
decode, `Resize(128)` (centre crop), normalize, over the same 2,000 images, `EPOCHS` times with
loaders built afresh (mentor's decode-once cache fills in the first pass and serves the
others; its "before" side is the loader with `cache=False` and Pillow decoding). The baseline
is the same per-item Pillow work in a plain `DataLoader`.

One untimed pass of each side, then `runs` timed passes alternating the order (baseline,
mentor; mentor, baseline; ...). Rates are images yielded / wall time of one full pass,
worker start-up included, reading every batch once as a training step would (a batch made
in a worker is shared memory that the main process pays to map in when it reads it). The
ratio is median(mentor rate) / median(baseline rate), and must reach 1.3 for training.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
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
from mentor.data.splitters import FuncSplitter, GrandparentSplitter
from mentor.data.transforms import Normalize, imagenet_stats
from mentor.vision import image as image_module
from mentor.vision.augment import aug_transforms
from mentor.vision.blocks import ImageBlock
from mentor.vision.resize import RandomResizedCrop, Resize

SIZE, BS, WORKERS = 128, 64, 2
TARGET = 1.3
QUICK_ITEMS = 256  # training images of a --quick run
EPOCHS = 5  # evaluation passes per timed run
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


class PillowEvalDataset(PillowAugDataset):
    """Decode, scale so the image covers `size`, centre crop, normalize: per item."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        size = self.size
        img = Image.open(self.files[index]).convert("RGB")
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.resize(
            (size, size), Image.Resampling.BILINEAR, (left, top, left + side, top + side)
        )
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
        return (x - MEAN) / STD, self.labels[index]


def baseline_loader(files: Sequence[Path], evaluation: bool = False) -> DataLoader[Any]:
    """The plain `DataLoader` over `PillowAugDataset` (labels from the parent folder)."""
    classes = sorted({f.parent.name for f in files})
    index = {name: i for i, name in enumerate(classes)}
    kind = PillowEvalDataset if evaluation else PillowAugDataset
    ds = kind(files, [index[f.parent.name] for f in files])
    return DataLoader(
        ds, batch_size=BS, shuffle=not evaluation, num_workers=WORKERS,
        drop_last=not evaluation, persistent_workers=False,
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


def _is_train(file: Path) -> bool:
    return file.parent.parent.name == "train"


def eval_loader(path: Path, n_train: int | None, cache: bool) -> Any:
    """mentor's validation loader over the training images: `Resize(SIZE)`, normalize."""
    block = DataBlock(
        blocks=(ImageBlock(), CategoryBlock),
        get_items=partial(_subset, n_train=n_train),
        get_y=parent_label,
        splitter=FuncSplitter(_is_train),
        item_tfms=[Resize(SIZE)],
        batch_tfms=[Normalize.from_stats(*imagenet_stats)],
    )
    dls = block.dataloaders(
        path, bs=BS, valid_bs=BS, num_workers=WORKERS, device="cpu", cache=cache
    )
    return dls.valid


@contextmanager
def pillow_decoding() -> Iterator[None]:
    """JPEGs decoded by Pillow, as before mentor used simplejpeg (forked workers inherit it)."""
    saved = image_module._simplejpeg
    image_module._simplejpeg = None
    try:
        yield
    finally:
        image_module._simplejpeg = saved


class PillowDecoded:
    """A loader iterated with `pillow_decoding` on."""

    def __init__(self, loader: Iterable[Any]) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[Any]:
        with pillow_decoding():
            yield from self.loader


class Epochs:
    """`EPOCHS` passes over a loader that `make` builds afresh: one long pass."""

    def __init__(self, make: Callable[[], Iterable[Any]]) -> None:
        self.make = make

    def __iter__(self) -> Iterator[Any]:
        loader = self.make()
        for _ in range(EPOCHS):
            yield from loader


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
    before: list[Pass] = field(default_factory=list)
    target: float | None = TARGET

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
    def ratio_before(self) -> float:
        """The same ratio for mentor as it was before (Pillow decoding, no cache)."""
        return statistics.median(p.rate for p in self.before) / self.baseline_rate

    @property
    def noisy(self) -> bool:
        """Whether other work visibly disturbed the runs (a pass over 1.5x the fastest)."""
        sides = (self.baseline, self.mentor, self.before)
        seconds = [[p.seconds for p in side] for side in sides if side]
        return any(max(side) > 1.5 * min(side) for side in seconds)

    def lines(self) -> list[str]:
        """The printed summary: rates, ratio and verdict, the spread of the runs."""
        if self.target is None:
            verdict = "(reported)"
        else:
            verdict = f"(target >= {self.target}) " + (
                "PASS" if self.ratio >= self.target else "MISS"
            )
        lines = [
            f"baseline (Pillow per item): {self.baseline_rate:7.1f} img/s",
            f"mentor (DataBlock):         {self.mentor_rate:7.1f} img/s",
            f"ratio mentor/baseline {self.ratio:.3f} {verdict}",
            f"before (Pillow decoding{', no cache' if self.target is None else ''}): "
            f"ratio {self.ratio_before:.3f}",
            f"runs: baseline {_spread(self.baseline)}, mentor {_spread(self.mentor)}, "
            f"before {_spread(self.before)}",
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
    sides = [
        (baseline, result.baseline), (dls.train, result.mentor),
        (PillowDecoded(dls.train), result.before),
    ]  # fmt: skip
    return _alternate(sides, runs, warmup, result)


def measure_eval(path: Path, n_train: int | None = None, runs: int = 3) -> Result:
    """The evaluation passes: `EPOCHS` passes per timed run, loaders built afresh."""
    files = [f for f in _subset(path, n_train) if _is_train(f)]
    result = Result(target=None)
    sides = [
        (Epochs(lambda: baseline_loader(files, evaluation=True)), result.baseline),
        (Epochs(lambda: eval_loader(path, n_train, cache=True)), result.mentor),
        (PillowDecoded(Epochs(lambda: eval_loader(path, n_train, cache=False))), result.before),
    ]  # fmt: skip
    return _alternate(sides, runs, 0, result)


def _alternate(
    sides: list[tuple[Iterable[Any], list[Pass]]], runs: int, warmup: int, result: Result
) -> Result:
    for index in range(warmup + runs):
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


def main(argv: Sequence[str] | None = None) -> tuple[Result, Result]:
    """Measure the loaders and print their rates and ratios; returns (training, evaluation)."""
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
    print("training: RandomResizedCrop, aug_transforms, normalize")
    result = measure(path, n_train, runs)
    print(batch_stats("baseline", result.baseline[-1].batch))
    print(batch_stats("mentor", result.mentor[-1].batch))
    for line in result.lines():
        print(line, flush=True)
    print(f"evaluation: Resize({SIZE}), normalize; {EPOCHS} passes per run, loaders built afresh")
    evaluation = measure_eval(path, n_train, runs)
    print(batch_stats("baseline", evaluation.baseline[-1].batch))
    print(batch_stats("mentor", evaluation.mentor[-1].batch))
    for line in evaluation.lines():
        print(line, flush=True)
    return result, evaluation


if __name__ == "__main__":
    main()
