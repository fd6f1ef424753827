"""A user's own exportable pieces, defined outside `mentor` with no edit to it: a block for
1-D signals, an item transform that fits them to a length, and a model factory."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mentor.core.spec import InitSpec, register_spec
from mentor.data.blocks import TransformBlock
from mentor.data.transforms import ItemTransform, Kinds

SIGNAL = "signal"


@register_spec
class SignalBlock(TransformBlock):
    """A sequence of numbers (a list or a 1-D array) as a float tensor, scaled by `gain`."""

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__(SIGNAL)
        self.gain = gain

    def to_spec(self) -> dict[str, Any]:
        return {"gain": self.gain}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SignalBlock:
        return cls(**spec)

    def encode(self, raw: Any) -> Tensor:
        return torch.as_tensor(raw, dtype=torch.float32).flatten() * self.gain


@register_spec
class FitLength(InitSpec, ItemTransform):
    """Cut a signal to `length` values, or pad it with its last value."""

    order = 50

    def __init__(self, length: int) -> None:
        self.length = length

    def to_spec(self) -> dict[str, Any]:
        return {"length": self.length}

    def __call__(self, sample: list[Any], kinds: Kinds, train: bool) -> list[Any]:
        return [self._fit(part) if kind == SIGNAL else part for part, kind in zip(sample, kinds)]

    def _fit(self, signal: Tensor) -> Tensor:
        if len(signal) >= self.length:
            return signal[: self.length]
        return torch.cat([signal, signal[-1:].expand(self.length - len(signal))])


@register_spec
def signal_net(length: int, n_out: int, width: int = 8) -> nn.Module:
    """A small 1-D convolutional classifier of signals of `length` values."""
    return nn.Sequential(
        nn.Unflatten(1, (1, length)), nn.Conv1d(1, width, 5, padding=2), nn.ReLU(),
        nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(width, n_out),
    )  # fmt: skip


def make_signals(n: int, seed: int = 0) -> tuple[list[list[float]], list[str]]:
    """`n` noisy sine and square waves of 20 to 40 values, with their kind as label."""
    generator = torch.Generator().manual_seed(seed)
    signals, labels = [], []
    for i in range(n):
        steps = int(torch.randint(20, 41, (1,), generator=generator))
        phase = torch.linspace(0, 6.28 * 2, steps) + float(torch.rand(1, generator=generator)) * 6
        wave = torch.sin(phase) if i % 2 else torch.sign(torch.sin(phase))
        signals.append((wave + 0.3 * torch.randn(steps, generator=generator)).tolist())
        labels.append("sine" if i % 2 else "square")
    return signals, labels
