"""ResNet and ResNeXt with torchvision's module layout, so its weight files load strictly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mentor.core.registry import register_model
from mentor.data.transforms import imagenet_stats
from mentor.vision.weights import find_weights, load_weights, read_state_dict

IMAGENET_MEAN = tuple(imagenet_stats[0])
IMAGENET_STD = tuple(imagenet_stats[1])


@dataclass(frozen=True)
class ModelMeta:
    """What `vision_learner` needs to know to cut a model and put a new head on it.

    Args:
        cut: `list(model.children())[:cut]` is the body (everything before pooling and head).
        n_features: channels of the body's output.
        mean: per-channel mean the (pretrained) weights expect, for RGB in [0, 1].
        std: per-channel standard deviation the weights expect.
        fixed_bn_stats: fine-tuning keeps the pretrained body's batch-norm statistics
            (running mean and variance) fixed; their scale and shift still train.
        has_weights: published weights exist, so `vision_learner` starts from them unless
            told otherwise (False: it trains the model from scratch by default).
    """

    cut: int
    n_features: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    fixed_bn_stats: bool = False
    has_weights: bool = True


def _downsample(c_in: int, c_out: int, stride: int) -> nn.Sequential | None:
    """The shortcut projection (1x1 conv + BN), or None when the shapes already match."""
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34); output has `planes` channels."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(c_in, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """conv-bn-relu-conv-bn, plus the shortcut, then ReLU."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, grouped) -> 1x1 with a residual; output has `4 * planes` channels."""

    expansion = 4

    def __init__(
        self, c_in: int, planes: int, stride: int = 1, groups: int = 1, width_per_group: int = 64
    ) -> None:
        super().__init__()
        width = int(planes * width_per_group / 64) * groups
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Three conv-bn steps (ReLU between), plus the shortcut, then ReLU."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet: 7x7 stem, max pool, four stages of residual blocks, average pool, linear head.

    Args:
        bottleneck: use `Bottleneck` blocks (ResNet-50 and deeper) instead of `BasicBlock`.
        depths: number of blocks in each of the four stages, e.g. (2, 2, 2, 2) for ResNet-18.
        n_out: outputs of the head (default 1000).
        c_in: input channels (default 3).
        groups: groups of the 3x3 convs in bottlenecks (default 1; 32 for ResNeXt-50 32x4d).
        width_per_group: channels per group in bottlenecks (default 64; 4 for ResNeXt).
    """

    def __init__(
        self,
        bottleneck: bool,
        depths: tuple[int, int, int, int],
        n_out: int = 1000,
        c_in: int = 3,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        expansion = Bottleneck.expansion if bottleneck else BasicBlock.expansion
        channels = 64
        stages: list[nn.Sequential] = []
        for i, depth in enumerate(depths):
            planes, blocks = 64 * 2**i, []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                block: nn.Module = (
                    Bottleneck(channels, planes, stride, groups, width_per_group)
                    if bottleneck
                    else BasicBlock(channels, planes, stride)
                )
                blocks.append(block)
                channels = planes * expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, n_out)
        self._init_weights()

    def _init_weights(self) -> None:
        """Kaiming (fan-out) init for convs; BN starts as the identity."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, the four stages, pooling, then the linear head."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def load_checkpoint(
    model: nn.Module, path: str | Path | None, name: str, head_prefix: str = "fc."
) -> nn.Module:
    """Load pretrained weights into `model`, keeping its new head when the sizes differ.

    Args:
        model: the freshly built model.
        path: the `.pth` file; None looks where `mentor.vision.weights.find_weights` looks
            (installed weight packages, `$MENTOR_HOME/weights/<name>.pth`, torch hub's folder).
        name: the model's registered name (for messages and the lookup).
        head_prefix: names of the classifier head (default "fc."), left out of the checkpoint
            when their shapes differ from the model's (e.g. `n_out != 1000`).

    Raises:
        FileNotFoundError: no weight file (the message says where to put one).
        ValueError: the checkpoint's names or shapes don't match the architecture.
    """
    state = read_state_dict(find_weights(name, path))
    own = model.state_dict()
    head = [key for key in own if key.startswith(head_prefix)]
    new_head = any(key in state and state[key].shape != own[key].shape for key in head)
    load_weights(model, state, name, drop_head=(head_prefix,) if new_head else ())
    return model


def _build(
    name: str,
    model: nn.Module,
    pretrained: bool,
    weights: str | Path | None,
) -> nn.Module:
    """Load weights into `model` when asked (`pretrained=True` or a `weights` path)."""
    if pretrained or weights is not None:
        load_checkpoint(model, weights, name)
    return model


@register_model(meta=ModelMeta(cut=-2, n_features=512))
def resnet18(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """ResNet-18 (11.7M parameters with 1000 outputs).

    Args:
        n_out: outputs of the head (default 1000).
        c_in: input channels (default 3); changes conv1's input channels.
        pretrained: load weights from `weights` or `$MENTOR_HOME/weights/resnet18.pth`.
        weights: path to a torchvision-format state dict (default None).
    """
    model = ResNet(False, (2, 2, 2, 2), n_out=n_out, c_in=c_in)
    return _build("resnet18", model, pretrained, weights)


@register_model(meta=ModelMeta(cut=-2, n_features=512))
def resnet34(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """ResNet-34 (21.8M parameters with 1000 outputs); arguments as in `resnet18`."""
    model = ResNet(False, (3, 4, 6, 3), n_out=n_out, c_in=c_in)
    return _build("resnet34", model, pretrained, weights)


@register_model(meta=ModelMeta(cut=-2, n_features=2048))
def resnet50(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """ResNet-50 (25.6M parameters with 1000 outputs); arguments as in `resnet18`."""
    model = ResNet(True, (3, 4, 6, 3), n_out=n_out, c_in=c_in)
    return _build("resnet50", model, pretrained, weights)


@register_model(meta=ModelMeta(cut=-2, n_features=2048))
def resnet101(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """ResNet-101 (44.5M parameters with 1000 outputs); arguments as in `resnet18`."""
    model = ResNet(True, (3, 4, 23, 3), n_out=n_out, c_in=c_in)
    return _build("resnet101", model, pretrained, weights)


@register_model(meta=ModelMeta(cut=-2, n_features=2048))
def resnet152(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """ResNet-152 (60.2M parameters with 1000 outputs); arguments as in `resnet18`."""
    model = ResNet(True, (3, 8, 36, 3), n_out=n_out, c_in=c_in)
    return _build("resnet152", model, pretrained, weights)


@register_model(meta=ModelMeta(cut=-2, n_features=2048))
def resnext50_32x4d(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """ResNeXt-50 32x4d (25.0M parameters with 1000 outputs); arguments as in `resnet18`."""
    model = ResNet(True, (3, 4, 6, 3), n_out=n_out, c_in=c_in, groups=32, width_per_group=4)
    return _build("resnext50_32x4d", model, pretrained, weights)
