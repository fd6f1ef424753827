"""`RandomErasing`: replace random boxes of training images with noise (Zhong et al., 2017),
a batch transform on the device that moves with the data pipeline."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from mentor.data.transforms import IMAGE, BatchTransform, Kinds
from mentor.vision.lighting import Generator, check_probability, coin_flips, uniform


class RandomErasing(BatchTransform):
    """With probability `p`, fill 1 to `max_count` boxes of each training image with standard
    normal noise (what a normalized image looks like); the boxes together cover a share in
    [sl, sh] of the image, each with an aspect ratio between `min_aspect` and its inverse.

    It runs after `Normalize` (order 100), on training batches only. Masks and points are
    left alone.

    Args:
        p: probability of erasing in each image (default 0.5).
        sl, sh: the smallest and largest share of the image erased (default 0 and 0.3).
        min_aspect: the smallest height / width ratio of a box (default 0.3).
        max_count: the most boxes per image (default 1).
        generator: a `torch.Generator` on the batch's device (default: the global RNG).

    Example:
        >>> batch_tfms = [*aug_transforms(), Normalize.from_stats(*imagenet_stats),
        ...               RandomErasing(p=0.5, max_count=3)]
    """

    order = 100
    train_only = True

    def __init__(
        self,
        p: float = 0.5,
        sl: float = 0.0,
        sh: float = 0.3,
        min_aspect: float = 0.3,
        max_count: int = 1,
        generator: Generator = None,
    ) -> None:
        check_probability(p)
        if not 0 <= sl <= sh <= 1:
            raise ValueError(f"need 0 <= sl <= sh <= 1, got sl={sl}, sh={sh}; try sl=0, sh=0.3")
        if not 0 < min_aspect <= 1:
            raise ValueError(f"min_aspect={min_aspect} must be in (0, 1]; try 0.3")
        if max_count < 1:
            raise ValueError(f"max_count={max_count} must be at least 1")
        self.p, self.sl, self.sh, self.min_aspect = p, sl, sh, min_aspect
        self.max_count, self.generator = max_count, generator

    def boxes(self, n: int, height: int, width: int, device: torch.device) -> Tensor:
        """A bool mask `[n, 1, height, width]` of the pixels to erase."""
        gen = self.generator
        counts = torch.randint(1, self.max_count + 1, (n,), device=device, generator=gen)
        chosen = coin_flips(n, self.p, device, gen)
        mask = torch.zeros(n, 1, height, width, dtype=torch.bool, device=device)
        rows = torch.arange(height, device=device).view(1, -1, 1)
        cols = torch.arange(width, device=device).view(1, 1, -1)
        widest = -math.log(self.min_aspect)
        for index in range(self.max_count):
            area = uniform(n, self.sl, self.sh, device, gen) * height * width / counts
            log_aspect = uniform(n, -widest, widest, device, gen)
            box_h = (area * log_aspect.exp()).sqrt().round().clamp(0, height)
            box_w = (area / log_aspect.exp()).sqrt().round().clamp(0, width)
            top = (torch.rand(n, device=device, generator=gen) * (height - box_h + 1)).floor()
            left = (torch.rand(n, device=device, generator=gen) * (width - box_w + 1)).floor()
            inside = (
                (rows >= top.view(-1, 1, 1)) & (rows < (top + box_h).view(-1, 1, 1))
                & (cols >= left.view(-1, 1, 1)) & (cols < (left + box_w).view(-1, 1, 1))
            )  # fmt: skip
            used = chosen & (index < counts)
            mask |= (inside & used.view(-1, 1, 1))[:, None]
        return mask

    def encode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """Erase boxes of every image part (the same boxes in each image part of an item)."""
        images = [part for part, kind in zip(batch, kinds) if kind == IMAGE]
        if not images:
            return batch
        n, _, height, width = images[0].shape
        mask = self.boxes(n, height, width, images[0].device)
        out = []
        for part, kind in zip(batch, kinds):
            if kind == IMAGE:
                noise = torch.randn(part.shape, device=part.device, generator=self.generator)
                part = torch.where(mask, noise.to(part.dtype), part)
            out.append(part)
        return out
