"""Small layers shared by the applications (vision, tabular, collab)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SigmoidRange(nn.Module):
    """A sigmoid scaled to `(low, high)`: predictions for targets known to lie in a range.

    Args:
        low: the lower bound of the outputs. high: the upper bound.

    Example:
        >>> SigmoidRange(0, 5.5)(torch.zeros(2))
        tensor([2.7500, 2.7500])
    """

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x) * (self.high - self.low) + self.low

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"


__all__ = ["SigmoidRange"]
