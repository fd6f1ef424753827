"""Building blocks for convolutional networks: conv-BN-ReLU, residual blocks, a tiny CNN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ConvLayer(nn.Sequential):
    """A convolution followed by batch norm and ReLU (each of the last two optional).

    The convolution has no bias when batch norm follows it, since BN's shift replaces it.

    Args:
        c_in: input channels.
        c_out: output channels.
        ks: kernel size (default 3); padding keeps the spatial size at stride 1.
        stride: convolution stride (default 1).
        act: append a ReLU (default True).
        bn: append a BatchNorm2d (default True).
        zero_bn: initialise the BN weight to zero (default False), so that a residual branch
            ending in this layer starts as the identity.
        groups: convolution groups (default 1).

    Example:
        >>> ConvLayer(3, 16, stride=2)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        ks: int = 3,
        stride: int = 1,
        act: bool = True,
        bn: bool = True,
        zero_bn: bool = False,
        groups: int = 1,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, ks, stride=stride, padding=ks // 2, groups=groups, bias=not bn)
        ]
        if bn:
            norm = nn.BatchNorm2d(c_out)
            nn.init.constant_(norm.weight, 0.0 if zero_bn else 1.0)
            layers.append(norm)
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """A residual block ("bag of tricks" ResNet-D): basic (expansion 1) or bottleneck (4).

    The residual branch is two 3x3 convs (expansion 1) or 1x1 -> 3x3 -> 1x1 (expansion 4);
    its last BN starts at zero so the block starts as the identity. The shortcut is the
    identity when shapes match, else average pooling (when strided) then a 1x1 conv + BN.

    Args:
        expansion: 1 for basic blocks, 4 for bottlenecks; output channels are
            `c_hidden * expansion`.
        c_in: input channels.
        c_hidden: channels inside the block.
        stride: stride of the block's 3x3 conv (default 1).
        groups: groups of the 3x3 conv (default 1; >1 gives ResNeXt-style blocks).
        zero_bn: zero-initialise the branch's last BN (default True).

    Example:
        >>> ResBlock(4, 64, 32, stride=2)(torch.zeros(1, 64, 16, 16)).shape
        torch.Size([1, 128, 8, 8])
    """

    def __init__(
        self,
        expansion: int,
        c_in: int,
        c_hidden: int,
        stride: int = 1,
        groups: int = 1,
        zero_bn: bool = True,
    ) -> None:
        super().__init__()
        c_out = c_hidden * expansion
        if expansion == 1:
            self.convs = nn.Sequential(
                ConvLayer(c_in, c_hidden, stride=stride, groups=groups),
                ConvLayer(c_hidden, c_out, act=False, zero_bn=zero_bn),
            )
        else:
            self.convs = nn.Sequential(
                ConvLayer(c_in, c_hidden, ks=1),
                ConvLayer(c_hidden, c_hidden, stride=stride, groups=groups),
                ConvLayer(c_hidden, c_out, ks=1, act=False, zero_bn=zero_bn),
            )
        shortcut: list[nn.Module] = []
        if stride != 1:
            shortcut.append(nn.AvgPool2d(stride, ceil_mode=True))
        if c_in != c_out:
            shortcut.append(ConvLayer(c_in, c_out, ks=1, act=False))
        self.shortcut = nn.Sequential(*shortcut)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the residual branch to the shortcut, then ReLU."""
        return self.act(self.convs(x) + self.shortcut(x))


def simple_cnn(channels: Sequence[int] = (1, 16, 32, 64), n_out: int = 10) -> nn.Sequential:
    """A small CNN: stride-2 ConvLayers, global average pooling, flatten, a linear head.

    Args:
        channels: input channels then each conv layer's output channels
            (default (1, 16, 32, 64)).
        n_out: number of outputs of the linear head (default 10).

    Example:
        >>> simple_cnn((1, 8, 16), n_out=10)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    if len(channels) < 2:
        raise ValueError(
            f"simple_cnn needs at least 2 channel counts (input, then one layer), got {channels}"
        )
    convs = [ConvLayer(c_in, c_out, stride=2) for c_in, c_out in zip(channels, channels[1:])]
    return nn.Sequential(
        *convs,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels[-1], n_out),
    )
