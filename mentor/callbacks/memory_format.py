"""Channels-last memory format for convolutional models (`learn.to_channelslast()`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from mentor.train.callback import Callback

if TYPE_CHECKING:
    from mentor.train.learner import Learner


def channels_last(x: Any) -> Any:
    """`x` in channels-last memory format when it is an image batch `[B, C, H, W]`, else `x`."""
    if isinstance(x, Tensor) and x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def to_memory_format(model: nn.Module, memory_format: torch.memory_format) -> nn.Module:
    """`model` with its 4-D parameters and buffers in `memory_format` (in place)."""
    return model.to(memory_format=memory_format)  # type: ignore[call-overload]  # not in its stub


class ChannelsLast(Callback):
    """Keeps the model's 4-D weights, and each batch's images, in channels-last memory format
    (`[B, H, W, C]` in memory, the same `[B, C, H, W]` shape).

    Convolutions in that layout are faster on CPUs (oneDNN) and on GPUs with tensor cores.
    On 2 CPU cores (`python -m bench.channels_last`) an epoch of EfficientNet-Lite0 at 128 px
    takes 0.53x the time of the same loop in the default format, ResNet-50 0.81x; tiny images
    (28 px) are slower, so it is not on by default. The values computed are the same up to
    float rounding.
    """

    order = 4  # before mixed precision and everything that reads the batch

    def before_fit(self) -> None:
        """The model's parameters and buffers in channels-last format (4-D ones only)."""
        to_memory_format(self.learn.model, torch.channels_last)

    def before_batch(self) -> None:
        """The batch's image inputs in channels-last format."""
        self.learn.xb = tuple(channels_last(x) for x in self.learn.xb)


def set_memory_format(learn: Learner, last: bool) -> None:
    """Add a `ChannelsLast` callback and convert the model (`last`), or remove it and make
    the model contiguous again."""
    learn.remove_cbs([cb for cb in learn.cbs if isinstance(cb, ChannelsLast)])
    if last:
        learn.add_cbs([ChannelsLast()])
    to_memory_format(learn.model, torch.channels_last if last else torch.contiguous_format)
