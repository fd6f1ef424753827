"""A user's own small model class (outside `mentor`), for the format fixtures and the
extension tests: a file naming it loads with `trusted_modules=["tests"]`."""

from __future__ import annotations

from torch import nn


class TinyCNN(nn.Sequential):
    """Two strided convolutions, average pooling and a linear layer: a few hundred weights."""

    def __init__(self, n_out: int = 2, c_in: int = 3) -> None:
        super().__init__(
            nn.Conv2d(c_in, 4, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, n_out),
        )  # fmt: skip


class TinySegmenter(nn.Sequential):
    """Two 3x3 convolutions that keep the size: `n_classes` scores per pixel."""

    def __init__(self, n_classes: int = 2, c_in: int = 3) -> None:
        super().__init__(
            nn.Conv2d(c_in, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, n_classes, 3, padding=1)
        )
