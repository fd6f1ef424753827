"""Small layers shared by the applications (vision, tabular, collab) and the course's
`GeneralRelu`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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


class GeneralRelu(nn.Module):
    """The course's ReLU: leaky (slope `leak` below 0), then shifted down by `sub`, then
    capped at `maxv`; each step is skipped when its argument is None (all None: a ReLU).

    A plain ReLU's outputs have mean about 0.4 for unit-normal inputs; `sub=0.4` brings it
    back to about 0, and `maxv` stops a few huge activations from dominating. `sub` is a
    buffer, so what `lsuv_init` sets it to is saved with the weights.

    Args:
        leak: the slope for negative inputs (None: 0). sub: subtracted after it (None).
        maxv: the largest output (None: no cap).

    Example:
        >>> GeneralRelu(leak=0.1, sub=0.4, maxv=6.0)(torch.tensor([-1.0, 0.5, 10.0]))
        tensor([-0.5000,  0.1000,  6.0000])
    """

    sub: Tensor | None

    def __init__(
        self, leak: float | None = None, sub: float | None = None, maxv: float | None = None
    ) -> None:
        super().__init__()
        for arg, value in (("leak", leak), ("sub", sub), ("maxv", maxv)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"GeneralRelu({arg}={value}): give a finite number or None")
        if leak is not None and leak < 0:
            raise ValueError(
                f"GeneralRelu(leak={leak}): the slope for negative inputs must be >= 0 "
                "(the course uses 0.1)"
            )
        self.leak = None if leak is None else float(leak)
        self.maxv = None if maxv is None else float(maxv)
        self.register_buffer("sub", None if sub is None else torch.tensor(float(sub)))

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x) if self.leak is None else F.leaky_relu(x, self.leak)
        if self.sub is not None:
            x = x - self.sub
        if self.maxv is not None:
            x = x.clamp_max(self.maxv)
        return x

    def extra_repr(self) -> str:
        sub = None if self.sub is None else round(float(self.sub), 4)
        return f"leak={self.leak}, sub={sub}, maxv={self.maxv}"


__all__ = ["GeneralRelu", "SigmoidRange"]
