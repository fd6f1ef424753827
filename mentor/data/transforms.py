"""Transforms: per item (in loader workers) and per batch (on the device).

A sample is a list of parts, one per block (e.g. an image and its label), and every
transform sees the parts together with their *kinds* so geometric transforms move images,
masks and points the same way:

- `"image"`: a PIL image before `ToTensor`, a uint8 tensor `[C, H, W]` after, a float batch
  `[B, C, H, W]` on the device once `IntToFloat` ran.
- `"mask"`: a PIL image of class indices, then a uint8 tensor `[H, W]`, then int64 `[B, H, W]`.
- `"points"`: float `[n, 2]` (x, y) in pixels of the current image before `ToTensor`, then in
  `[-1, 1]` (left/top = -1), `[B, n, 2]` in a batch.
- `"label"`: anything else (class index, one-hot vector, number): never moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mentor.core.spec import InitSpec, register_spec

IMAGE, MASK, POINTS, LABEL = "image", "mask", "points", "label"
Kinds = tuple[str, ...]


class ItemTransform:
    """Transforms one sample (all its parts) in a loader worker.

    Subclasses implement `__call__(sample, kinds, train)`; `train` is False for validation
    and test items, where random transforms must be deterministic (e.g. a center crop).
    Random choices use Python's `random` module, which each loader worker seeds.

    `random` says whether the transform draws anything when training: a split whose item
    transforms all draw nothing is decoded once and kept in memory (`mentor.data.cache`).
    It is True unless a transform declares otherwise.
    """

    order: int = 0
    random: bool = True

    def __call__(self, sample: list[Any], kinds: Kinds, train: bool) -> list[Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")


class BatchTransform:
    """Transforms a whole batch on the device; `decode` undoes it for display.

    `train_only` transforms (augmentations) run on training batches only.
    """

    order: int = 0
    train_only: bool = False

    def encode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """The transformed batch (a list with one entry per part)."""
        return batch

    def decode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """Undo `encode` as far as display needs (default: unchanged)."""
        return batch


@register_spec
class ToTensor(InitSpec, ItemTransform):
    """The last item transform: images to uint8 `[C, H, W]`, masks to uint8 `[H, W]`, points
    to `[-1, 1]` coordinates relative to the image; labels pass through."""

    order = 100
    random = False

    def to_spec(self) -> dict[str, Any]:
        """No settings."""
        return {}

    def __call__(self, sample: list[Any], kinds: Kinds, train: bool) -> list[Any]:
        size = next((_size(part) for part, kind in zip(sample, kinds) if kind == IMAGE), None)
        return [_to_tensor(part, kind, size) for part, kind in zip(sample, kinds)]


def _size(image: Any) -> tuple[int, int]:
    """(width, height) of a PIL image or a `[C, H, W]` tensor."""
    if isinstance(image, Tensor):
        return image.shape[-1], image.shape[-2]
    return image.size


def _to_tensor(part: Any, kind: str, size: tuple[int, int] | None) -> Any:
    if kind == IMAGE and not isinstance(part, Tensor):
        array = np.asarray(part)
        array = array[:, :, None] if array.ndim == 2 else array
        return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
    if kind == MASK and not isinstance(part, Tensor):
        return torch.from_numpy(np.asarray(part, dtype=np.uint8).copy())
    if kind == POINTS:
        points = torch.as_tensor(part, dtype=torch.float32).reshape(-1, 2)
        if size is None:
            raise ValueError("points need an image in the same sample to be scaled to [-1, 1]")
        scale = torch.tensor([size[0], size[1]], dtype=torch.float32)
        return points / scale * 2 - 1
    return part


@register_spec
class IntToFloat(InitSpec, BatchTransform):
    """uint8 images to floats in [0, 1]; masks to int64 (what losses want)."""

    order = 0

    def to_spec(self) -> dict[str, Any]:
        """No settings."""
        return {}

    def encode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """Convert images and masks."""
        out = []
        for part, kind in zip(batch, kinds):
            if kind == IMAGE and not part.is_floating_point():
                part = part.float().div_(255)
            elif kind == MASK:
                part = part.long()
            out.append(part)
        return out

    def decode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """Images back to uint8 for display (once: every ImageBlock of an image-to-image
        DataBlock brings its own IntToFloat, and the second must leave uint8 parts as they are)."""
        return [
            (part.clamp(0, 1) * 255).round().to(torch.uint8)
            if kind == IMAGE and part.is_floating_point()
            else part
            for part, kind in zip(batch, kinds)
        ]


@register_spec
class Normalize(InitSpec, BatchTransform):
    """Subtract the mean and divide by the standard deviation of each image channel.

    Example:
        >>> Normalize.from_stats(*imagenet_stats)
    """

    order = 90

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)

    @classmethod
    def from_stats(cls, mean: Sequence[float], std: Sequence[float]) -> Normalize:
        """Normalize with the given per-channel statistics (e.g. `imagenet_stats`)."""
        return cls(mean, std)

    def to_spec(self) -> dict[str, Any]:
        """The per-channel statistics."""
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        if self.mean.device != like.device:
            self.mean, self.std = self.mean.to(like.device), self.std.to(like.device)
        return self.mean, self.std

    def encode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """Normalize the images of the batch."""
        out = []
        for part, kind in zip(batch, kinds):
            if kind == IMAGE:
                mean, std = self._stats(part)
                part = torch.sub(part, mean).div_(std)  # one new tensor; the input is kept
            out.append(part)
        return out

    def decode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """Back to [0, 1] images."""
        out = []
        for part, kind in zip(batch, kinds):
            if kind == IMAGE:
                mean, std = self._stats(part)
                part = part * std + mean
            out.append(part)
        return out


imagenet_stats = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
"""ImageNet's per-channel mean and standard deviation (RGB, images in [0, 1])."""


def apply_item_tfms(
    tfms: Sequence[ItemTransform], sample: list[Any], kinds: Kinds, train: bool
) -> list[Any]:
    """Run item transforms in `order`."""
    for tfm in sorted(tfms, key=lambda t: t.order):
        sample = tfm(sample, kinds, train)
    return sample


class OneThread:
    """Runs a CPU batch pipeline on one intra-op thread: with loader workers on the other
    cores, more threads only fight them for the CPU (measured slower on 2 cores)."""

    def __init__(self, pipeline: BatchPipeline) -> None:
        self.pipeline = pipeline

    def __call__(self, batch: Sequence[Any]) -> tuple[Any, ...]:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.pipeline(batch)
        finally:
            torch.set_num_threads(threads)


class BatchPipeline:
    """The batch transforms of one loader (training ones include the augmentations)."""

    def __init__(self, tfms: Sequence[BatchTransform], kinds: Kinds, train: bool) -> None:
        self.tfms = sorted((t for t in tfms if train or not t.train_only), key=lambda t: t.order)
        self.kinds = kinds

    def __call__(self, batch: Sequence[Any]) -> tuple[Any, ...]:
        parts = list(batch)
        for tfm in self.tfms:
            parts = tfm.encode(parts, self.kinds)
        return tuple(parts)

    def decode(self, batch: Sequence[Any]) -> tuple[Any, ...]:
        """Undo the transforms (in reverse) for display."""
        parts = list(batch)
        for tfm in reversed(self.tfms):
            parts = tfm.decode(parts, self.kinds)
        return tuple(parts)
