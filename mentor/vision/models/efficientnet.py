"""EfficientNet-Lite (lite0, lite1, lite2): the mobile EfficientNets without squeeze-excitation.

The Lite variants differ from EfficientNet-B* in four ways: no squeeze-excitation, ReLU6
instead of swish, and the stem (32 channels) and head (1280 channels) are not scaled, nor
are the repeats of the first and last stages. The module names follow the public PyTorch
port of the TF-Lite checkpoints without its leading underscores (`_blocks.3._bn1.weight` is
`blocks.3.bn1.weight` here), so `lite_state_dict_names` is the whole name mapping.

Example:
    >>> model = efficientnet_lite0(n_out=10)  # random init
    >>> model = efficientnet_lite0(pretrained=True)  # ImageNet weights (weight package)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mentor.core.registry import register_model
from mentor.vision.models.resnet import ModelMeta
from mentor.vision.weights import find_weights, load_weights, read_state_dict

BN_MOMENTUM = 0.01  # the TF default 0.99, in PyTorch's convention
BN_EPS = 1e-3


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks as in the EfficientNet-B0 baseline (before scaling)."""

    expand: int
    kernel: int
    stride: int
    repeats: int
    c_out: int


BASELINE: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 16),
    StageSpec(6, 3, 2, 2, 24),
    StageSpec(6, 5, 2, 2, 40),
    StageSpec(6, 3, 2, 3, 80),
    StageSpec(6, 5, 1, 3, 112),
    StageSpec(6, 5, 2, 4, 192),
    StageSpec(6, 3, 1, 1, 320),
)

# name -> (width multiplier, depth multiplier, dropout before the classifier)
LITE_VARIANTS: dict[str, tuple[float, float, float]] = {
    "efficientnet_lite0": (1.0, 1.0, 0.2),
    "efficientnet_lite1": (1.0, 1.1, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 0.3),
}


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale `channels` by `width`, rounded to a multiple of `divisor` (never down by >10%)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a stage's number of blocks by `depth`, rounding up."""
    return int(math.ceil(repeats * depth))


class Conv2dSame(nn.Conv2d):
    """A strided convolution padded like TensorFlow's 'SAME': the output is `ceil(in / stride)`
    and an odd total padding puts the extra pixel at the bottom and right.

    The EfficientNet-Lite weights were trained that way. PyTorch's symmetric padding shifts
    every strided layer's sampling grid by a pixel against them, which cost 2 points of the
    ImageNet head's accuracy on imagenette at 160 px.
    """

    def forward(self, x: Tensor) -> Tensor:
        pads: list[int] = []
        for size, kernel, stride in zip(x.shape[:1:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def lite_conv(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Conv2d:
    """A bias-free convolution that keeps `ceil(size / stride)`: TF 'SAME' when strided."""
    if stride == 1:
        return nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups, bias=False)
    return Conv2dSame(c_in, c_out, kernel, stride, padding=0, groups=groups, bias=False)


class MBConv(nn.Module):
    """Inverted residual: expand 1x1, depthwise kxk, project 1x1; residual when shapes match."""

    def __init__(
        self, c_in: int, c_out: int, expand: int, kernel: int, stride: int, drop_connect: float
    ) -> None:
        super().__init__()
        hidden = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self.expand_conv = nn.Conv2d(c_in, hidden, 1, bias=False)
            self.bn0 = nn.BatchNorm2d(hidden, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.depthwise_conv = lite_conv(hidden, hidden, kernel, stride, groups=hidden)
        self.bn1 = nn.BatchNorm2d(hidden, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.project_conv = nn.Conv2d(hidden, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and c_in == c_out
        self.drop_connect = drop_connect

    def forward(self, x: Tensor) -> Tensor:
        out = x
        if self.has_expand:
            out = self.act(self.bn0(self.expand_conv(out)))
        out = self.act(self.bn1(self.depthwise_conv(out)))
        out = self.bn2(self.project_conv(out))
        if not self.residual:
            return out
        if self.training and self.drop_connect > 0:
            out = drop_path(out, self.drop_connect)
        return out + x


def drop_path(x: Tensor, p: float) -> Tensor:
    """Zero whole samples of a residual branch with probability `p` (stochastic depth)."""
    keep = 1.0 - p
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


def lite_blocks(width: float, depth: float, drop_connect: float) -> nn.Sequential:
    """The MBConv blocks of a Lite variant; first and last stages keep their repeats."""
    specs: list[tuple[int, int, int, int, int]] = []  # c_in, c_out, expand, kernel, stride
    c_in = 32
    for i, stage in enumerate(BASELINE):
        c_out = round_channels(stage.c_out, width)
        fixed = i in (0, len(BASELINE) - 1)
        repeats = stage.repeats if fixed else round_repeats(stage.repeats, depth)
        for j in range(repeats):
            stride = stage.stride if j == 0 else 1
            specs.append((c_in, c_out, stage.expand, stage.kernel, stride))
            c_in = c_out
    blocks = [
        MBConv(ci, co, e, k, s, drop_connect * i / len(specs))
        for i, (ci, co, e, k, s) in enumerate(specs)
    ]
    return nn.Sequential(*blocks)


class EfficientNetLite(nn.Module):
    """Stem conv -> MBConv blocks -> 1x1 head conv (1280) -> pool -> dropout -> linear."""

    def __init__(
        self,
        width: float,
        depth: float,
        dropout: float,
        n_out: int = 1000,
        c_in: int = 3,
        drop_connect: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv_stem = lite_conv(c_in, 32, 3, stride=2)
        self.bn0 = nn.BatchNorm2d(32, momentum=BN_MOMENTUM, eps=BN_EPS)
        # a child of its own, so the children in order are the forward pass (the body cut)
        self.act0 = nn.ReLU6(inplace=True)
        self.blocks = lite_blocks(width, depth, drop_connect)
        c_last = round_channels(BASELINE[-1].c_out, width)
        self.conv_head = nn.Conv2d(c_last, 1280, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(1280, momentum=BN_MOMENTUM, eps=BN_EPS)
        self.act = nn.ReLU6(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1280, n_out)
        init_weights(self)

    def features(self, x: Tensor) -> Tensor:
        """The feature map before pooling: (batch, 1280, h/32, w/32)."""
        x = self.act0(self.bn0(self.conv_stem(x)))
        x = self.blocks(x)
        return self.act(self.bn1(self.conv_head(x)))

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.fc(self.dropout(x))


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan-out) convs, unit BatchNorm, small uniform classifier."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def lite_state_dict_names(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a checkpoint of the public PyTorch port (`_blocks.0._bn1.weight`) to ours."""
    renamed: dict[str, Tensor] = {}
    for key, value in state.items():
        renamed[".".join(part.removeprefix("_") for part in key.split("."))] = value
    return renamed


def adapt_stem(weight: Tensor, c_in: int) -> Tensor:
    """An RGB stem kernel for `c_in` channels: the mean over RGB, repeated, rescaled."""
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, c_in, 1, 1) * (3.0 / c_in)


def efficientnet_lite(
    name: str,
    n_out: int = 1000,
    c_in: int = 3,
    pretrained: bool = False,
    weights: str | Path | None = None,
    drop_connect: float = 0.2,
) -> EfficientNetLite:
    """Build the Lite variant `name`; load ImageNet weights when `pretrained` or `weights`.

    `drop_connect` is the stochastic-depth rate of the last block (earlier blocks scale it
    down linearly), active in training only; 0.2 as the weights were trained.
    """
    width, depth, dropout = LITE_VARIANTS[name]
    model = EfficientNetLite(width, depth, dropout, n_out, c_in, drop_connect)
    if not (pretrained or weights is not None):
        return model
    state = lite_state_dict_names(read_state_dict(find_weights(name, weights)))
    drop: list[str] = []
    if n_out != state["fc.weight"].shape[0]:
        drop.append("fc.")
    if c_in != state["conv_stem.weight"].shape[1]:
        state["conv_stem.weight"] = adapt_stem(state["conv_stem.weight"], c_in)
        warnings.warn(
            f"{name}: stem adapted from 3 to {c_in} input channels (mean of RGB kernels)",
            stacklevel=2,
        )
    dropped = load_weights(model, state, name, drop_head=drop)
    if dropped:
        warnings.warn(
            f"{name}: pretrained tensors left out (new head for {n_out} outputs): "
            + ", ".join(dropped),
            stacklevel=2,
        )
    return model


# body: stem, blocks, head conv, bn, act; then pool, dropout, fc. Weights expect [-1, 1].
# Batch statistics of small fine-tuning batches pulled the running statistics away from
# the pretrained ones: imagenette at 160 px scored 92.8% after fine_tune(2) with them
# training, 96.2% with them fixed (as Keras advises for EfficientNet).
LITE_META = ModelMeta(
    cut=-3, n_features=1280, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), fixed_bn_stats=True
)


@register_model(meta=LITE_META)
def efficientnet_lite0(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> EfficientNetLite:
    """EfficientNet-Lite0 (4.65M parameters with 1000 classes; 224px, inputs in [-1, 1])."""
    return efficientnet_lite("efficientnet_lite0", n_out, c_in, pretrained, weights)


@register_model(meta=LITE_META)
def efficientnet_lite1(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> EfficientNetLite:
    """EfficientNet-Lite1 (5.42M parameters with 1000 classes; 240px, inputs in [-1, 1])."""
    return efficientnet_lite("efficientnet_lite1", n_out, c_in, pretrained, weights)


@register_model(meta=LITE_META)
def efficientnet_lite2(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> EfficientNetLite:
    """EfficientNet-Lite2 (6.09M parameters with 1000 classes; 260px, inputs in [-1, 1])."""
    return efficientnet_lite("efficientnet_lite2", n_out, c_in, pretrained, weights)
