"""XResNet: the "bag of tricks" ResNet-D (three-conv stem, average-pool shortcuts, zero BN)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from mentor.core.init import kaiming_init_
from mentor.core.registry import register_model
from mentor.vision.models.layers import ConvLayer, ResBlock
from mentor.vision.models.resnet import ModelMeta, load_checkpoint


class XResNet(nn.Sequential):
    """ResNet-D as a flat Sequential: stem, max pool, four stages, pool, flatten, linear head.

    The stem is three 3x3 ConvLayers (c_in -> 32 -> 32 -> 64, the first with stride 2);
    each stage's first block has stride 2 (except the first stage); the body is
    `list(model.children())[:-3]`.

    Args:
        expansion: 1 for basic blocks (XResNet-18/34), 4 for bottlenecks (XResNet-50).
        depths: number of blocks in each of the four stages.
        n_out: outputs of the head (default 1000).
        c_in: input channels (default 3).
    """

    def __init__(
        self, expansion: int, depths: tuple[int, int, int, int], n_out: int = 1000, c_in: int = 3
    ) -> None:
        stem = [ConvLayer(c_in, 32, stride=2), ConvLayer(32, 32), ConvLayer(32, 64)]
        stages: list[nn.Module] = []
        channels = 64
        for i, depth in enumerate(depths):
            hidden = 64 * 2**i
            blocks = []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(ResBlock(expansion, channels, hidden, stride=stride))
                channels = hidden * expansion
            stages.append(nn.Sequential(*blocks))
        super().__init__(
            *stem,
            nn.MaxPool2d(3, stride=2, padding=1),
            *stages,
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, n_out),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """Kaiming-normal init for convs and the head; BN weights keep their (zero) init."""
        kaiming_init_(self, nonlinearity="relu")


def _build(name: str, model: nn.Module, pretrained: bool, weights: str | Path | None) -> nn.Module:
    """Load weights into `model` when asked (`pretrained=True` or a `weights` path)."""
    if pretrained or weights is not None:
        # The head is the last child of the Sequential, index 10.
        load_checkpoint(model, weights, name, head_prefix="10.")
    return model


@register_model(meta=ModelMeta(cut=-3, n_features=512))
def xresnet18(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """XResNet-18 (ResNet-D with basic blocks).

    Args:
        n_out: outputs of the head (default 1000).
        c_in: input channels (default 3).
        pretrained: load weights from `weights` or `$MENTOR_HOME/weights/xresnet18.pth`.
        weights: path to a state dict saved from this architecture (default None).
    """
    return _build("xresnet18", XResNet(1, (2, 2, 2, 2), n_out, c_in), pretrained, weights)


@register_model(meta=ModelMeta(cut=-3, n_features=512))
def xresnet34(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """XResNet-34 (ResNet-D with basic blocks); arguments as in `xresnet18`."""
    return _build("xresnet34", XResNet(1, (3, 4, 6, 3), n_out, c_in), pretrained, weights)


@register_model(meta=ModelMeta(cut=-3, n_features=2048))
def xresnet50(
    n_out: int = 1000, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Module:
    """XResNet-50 (ResNet-D with bottleneck blocks); arguments as in `xresnet18`."""
    return _build("xresnet50", XResNet(4, (3, 4, 6, 3), n_out, c_in), pretrained, weights)
