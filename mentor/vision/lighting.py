"""Lighting augmentation on the device (brightness, contrast), and the random draws that the
geometric augmentations share."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from mentor.data.transforms import IMAGE, BatchTransform, Kinds

Generator = torch.Generator | None


def check_probability(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability p={p} is outside [0, 1]; pass a value such as 0.5")


def uniform(n: int, low: float, high: float, device: torch.device, gen: Any) -> Tensor:
    """`n` float32 draws uniform in [low, high)."""
    return torch.rand(n, device=device, generator=gen) * (high - low) + low


def coin_flips(n: int, p: float, device: torch.device, gen: Any) -> Tensor:
    """A bool mask of the items an augmentation applies to, each with probability `p`."""
    return torch.rand(n, device=device, generator=gen) < p


class LightingAug(BatchTransform):
    """Base of the lighting augmentations: one random amount per item, images only.

    Args:
        max_lighting: sets the range of the change (default 0.2), in [0, 1).
        p: probability of changing each item (default 0.75).
        generator: a `torch.Generator` on the batch's device (default: the global RNG).
    """

    train_only = True

    def __init__(self, max_lighting: float = 0.2, p: float = 0.75, generator: Generator = None):
        if not 0 <= max_lighting < 1:
            raise ValueError(f"max_lighting={max_lighting} is outside [0, 1); try 0.2")
        check_probability(p)
        self.max_lighting, self.p, self.generator = max_lighting, p, generator

    def amounts(self, n: int, device: torch.device) -> Tensor:
        """`[n]` random amounts, the neutral one for the items not chosen."""
        raise NotImplementedError(f"{type(self).__name__} must implement amounts")

    def adjust(self, images: Tensor, amounts: Tensor) -> Tensor:
        """`images` `[B, C, H, W]` changed by `amounts` `[B, 1, 1, 1]`, clamped to [0, 1]."""
        raise NotImplementedError(f"{type(self).__name__} must implement adjust")

    def encode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """Change the images of each chosen item (all image parts by the same amount)."""
        images = [part for part, kind in zip(batch, kinds) if kind == IMAGE]
        if not images:
            return batch
        amounts = self.amounts(images[0].shape[0], images[0].device).view(-1, 1, 1, 1)
        return [
            self.adjust(part, amounts.to(part.dtype)) if kind == IMAGE else part
            for part, kind in zip(batch, kinds)
        ]


class Brightness(LightingAug):
    """Add a random amount in [-max_lighting, max_lighting] to images, clamped to [0, 1].

    Args: as `LightingAug` (max_lighting=0.2, p=0.75, generator=None).
    """

    order = 30

    def amounts(self, n: int, device: torch.device) -> Tensor:
        """Uniform shifts (0 for the items not chosen)."""
        shift = uniform(n, -self.max_lighting, self.max_lighting, device, self.generator)
        return shift * coin_flips(n, self.p, device, self.generator)

    def adjust(self, images: Tensor, amounts: Tensor) -> Tensor:
        """Shift and clamp (one new tensor, then in place on it: fewer large allocations)."""
        return torch.add(images, amounts).clamp_(0, 1)


class Contrast(LightingAug):
    """Scale images about their mean by a factor in [1 - max_lighting, 1 / (1 - max_lighting)].

    The factor is log-uniform, so raising and lowering the contrast are equally likely;
    results are clamped to [0, 1].

    Args: as `LightingAug` (max_lighting=0.2, p=0.75, generator=None).
    """

    order = 40

    def amounts(self, n: int, device: torch.device) -> Tensor:
        """Log-uniform factors (1 for the items not chosen)."""
        log_max = -math.log(1 - self.max_lighting)
        log_factor = uniform(n, -log_max, log_max, device, self.generator)
        return (log_factor * coin_flips(n, self.p, device, self.generator)).exp()

    def adjust(self, images: Tensor, amounts: Tensor) -> Tensor:
        """Scale about each image's mean and clamp."""
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        return torch.sub(images, mean).mul_(amounts).add_(mean).clamp_(0, 1)


class Lighting(BatchTransform):
    """Brightness and contrast in one pass over the images: each item, with probability `p`
    each, gets a contrast factor (as `Contrast`) and a brightness shift (as `Brightness`);
    `(x - mean) * factor + mean + shift`, clamped to [0, 1] once.

    Args: max_lighting (0.2), p (0.75), generator (None): as `LightingAug`.
    """

    order = 30
    train_only = True

    def __init__(self, max_lighting: float = 0.2, p: float = 0.75, generator: Generator = None):
        self.brightness = Brightness(max_lighting, p, generator)
        self.contrast = Contrast(max_lighting, p, generator)

    def encode(self, batch: list[Any], kinds: Kinds) -> list[Any]:
        """Change the images of each chosen item (all image parts by the same amounts)."""
        images = [part for part, kind in zip(batch, kinds) if kind == IMAGE]
        if not images:
            return batch
        n, device = images[0].shape[0], images[0].device
        factors = self.contrast.amounts(n, device).view(-1, 1, 1, 1)
        shifts = self.brightness.amounts(n, device).view(-1, 1, 1, 1)
        return [self._adjust(part, factors, shifts) if kind == IMAGE else part
                for part, kind in zip(batch, kinds)]  # fmt: skip

    @staticmethod
    def _adjust(images: Tensor, factors: Tensor, shifts: Tensor) -> Tensor:
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        offsets = (mean * (1 - factors) + shifts).to(images.dtype)
        return torch.mul(images, factors.to(images.dtype)).add_(offsets).clamp_(0, 1)
