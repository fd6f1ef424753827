"""`small_cnn`: the architecture `vision_learner` picks for small images trained from scratch."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from mentor.core.registry import register_model
from mentor.vision.models.layers import ConvLayer
from mentor.vision.models.resnet import ModelMeta, load_checkpoint

SMALL_IMAGE = 64
"""Images whose shorter side is below this many pixels get `small_cnn` from scratch by
default: ImageNet weights were learnt on objects hundreds of pixels wide, and a pretrained body
run on a 28 px digit spends most of its compute on feature maps of one or two pixels."""

# (channels, stride): a stride-1 layer at half resolution adds depth where 28-64 px images
# still have detail; three stride-2 layers leave 4 px (28) to 8 px (64) for the pooling
_LAYERS = ((16, 2), (32, 1), (64, 2), (128, 2))


@register_model(meta=ModelMeta(cut=-3, n_features=_LAYERS[-1][0], has_weights=False))
def small_cnn(
    n_out: int = 10, c_in: int = 3, pretrained: bool = False, weights: str | Path | None = None
) -> nn.Sequential:
    """Four ConvLayers (16 channels at stride 2, 32 at stride 1, 64 and 128 at stride 2),
    average pooling and a linear layer: 100k parameters, for images of about 28-64 px.

    Args:
        n_out: outputs (default 10). c_in: input channels (default 3).
        pretrained, weights: load a state dict saved from this architecture (there are no
            published weights: `pretrained=True` needs `weights`).

    Example:
        >>> small_cnn(n_out=2, c_in=1)(torch.zeros(4, 1, 28, 28)).shape
        torch.Size([4, 2])
    """
    layers: list[nn.Module] = []
    for c_out, stride in _LAYERS:
        layers.append(ConvLayer(c_in, c_out, stride=stride))
        c_in = c_out
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, n_out))
    if pretrained or weights is not None:
        if weights is None:
            raise ValueError(
                "small_cnn has no published weights: pass weights=<a state dict file>, or "
                "pretrained=False to train it from scratch"
            )
        load_checkpoint(model, weights, "small_cnn", head_prefix=f"{len(layers) + 2}.")
    return model
