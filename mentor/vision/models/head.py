"""The model `vision_learner` trains: a registered architecture's body and a new head.

`build_vision_model` is registered for export: a `.mentor` file names it with its arguments,
and loading rebuilds the model here without importing the training loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from mentor.core.layers import SigmoidRange
from mentor.core.registry import MODELS
from mentor.core.spec import register_spec
from mentor.vision.models import MODEL_META
from mentor.vision.models.efficientnet import EfficientNetLite
from mentor.vision.models.resnet import ModelMeta


class AdaptiveConcatPool2d(nn.Module):
    """Adaptive average and max pooling side by side: `[B, C, H, W] -> [B, 2C, s, s]`.

    Args:
        size: the output's spatial size (1).
    """

    def __init__(self, size: int = 1) -> None:
        super().__init__()
        self.avg = nn.AdaptiveAvgPool2d(size)
        self.max = nn.AdaptiveMaxPool2d(size)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.max(x), self.avg(x)], dim=1)


def create_head(
    n_features: int,
    n_out: int,
    lin_ftrs: Sequence[int] = (512,),
    ps: float = 0.5,
    concat_pool: bool = True,
    y_range: tuple[float, float] | None = None,
) -> nn.Sequential:
    """A classifier head for a body with `n_features` output channels.

    Pooling (average and max concatenated, or average only), flatten, then for each layer
    batch norm, dropout and a linear layer, with ReLU between them; dropout is `ps / 2`
    before the hidden layers and `ps` before the last one.

    Args:
        n_features: channels of the body's output. n_out: outputs of the model.
        lin_ftrs: sizes of the hidden linear layers ((512,); () for a single linear layer).
        ps: dropout before the last linear layer. concat_pool: AdaptiveConcatPool2d.
        y_range: end with `SigmoidRange(*y_range)` (regression with known bounds).

    Example:
        >>> create_head(512, 10)(torch.randn(2, 512, 7, 7)).shape
        torch.Size([2, 10])
    """
    pool: nn.Module = AdaptiveConcatPool2d() if concat_pool else nn.AdaptiveAvgPool2d(1)
    sizes = [n_features * (2 if concat_pool else 1), *lin_ftrs, n_out]
    layers: list[nn.Module] = [pool, nn.Flatten()]
    n_linear = len(sizes) - 1
    for i in range(n_linear):
        last = i == n_linear - 1
        layers += [nn.BatchNorm1d(sizes[i]), nn.Dropout(ps if last else ps / 2)]
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if not last:
            layers.append(nn.ReLU(inplace=True))
    if y_range is not None:
        layers.append(SigmoidRange(*y_range))
    return nn.Sequential(*layers)


def pretrained_classifier(model: nn.Module, n_features: int) -> nn.Linear:
    """The classifier of a whole registered model (its last linear layer), which reads the
    body's `n_features` average-pooled channels."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1].in_features != n_features:
        raise ValueError(
            f"{type(model).__name__} does not end with a linear classifier over its "
            f"{n_features} pooled features, so its classes cannot be kept: drop known_classes"
        )
    return linears[-1]


def known_classes_head(
    classifier: nn.Linear, known_rows: Sequence[int | None], ps: float = 0.5
) -> nn.Sequential:
    """A head that starts as the pretrained `classifier` restricted to some of its classes:
    average pooling, flatten, dropout `ps` and a linear layer whose output `i` copies row
    `known_rows[i]` of `classifier` (weights and bias), or starts from zeros when it is None
    (a class the pretrained model does not know).

    Example:
        >>> fc = nn.Linear(512, 1000)
        >>> known_classes_head(fc, [0, 217, None])(torch.randn(2, 512, 5, 5)).shape
        torch.Size([2, 3])
    """
    n_rows = classifier.out_features
    bad = [row for row in known_rows if row is not None and not 0 <= row < n_rows]
    if bad:
        raise ValueError(f"known class rows {bad} are outside the pretrained {n_rows} classes")
    linear = nn.Linear(classifier.in_features, len(known_rows))
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.zero_()
        for i, row in enumerate(known_rows):
            if row is not None:
                linear.weight[i] = classifier.weight[row]
                linear.bias[i] = classifier.bias[row]
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(ps), linear)


def model_name(arch: str | Callable[..., nn.Module]) -> str:
    """The registry name of `arch` (a name, or a registered factory such as `resnet34`)."""
    name = arch if isinstance(arch, str) else getattr(arch, "__name__", repr(arch))
    if name not in MODEL_META:
        known = ", ".join(sorted(MODEL_META))
        raise KeyError(
            f"vision_learner does not know where to cut {name!r} into body and head; "
            f"architectures it knows: {known}"
        )
    return name


def create_body(model: nn.Module, meta: ModelMeta) -> nn.Sequential:
    """The feature extractor of `model`: its children before `meta.cut`, as a Sequential.

    EfficientNet-Lite's MBConv blocks are listed one by one (not as one `blocks` child), so
    the parameter groups can divide between them.
    """
    if isinstance(model, EfficientNetLite):
        stem = [model.conv_stem, model.bn0, model.act0]
        return nn.Sequential(*stem, *model.blocks, model.conv_head, model.bn1, model.act)
    return nn.Sequential(*list(model.children())[: meta.cut])


@register_spec
def build_vision_model(
    arch: str,
    n_out: int,
    c_in: int = 3,
    lin_ftrs: Sequence[int] = (512,),
    ps: float = 0.5,
    concat_pool: bool = True,
    y_range: Sequence[float] | None = None,
    pretrained: bool = False,
    weights: str | Path | None = None,
    factory: str | Callable[..., nn.Module] | None = None,
    known_rows: Sequence[int | None] | None = None,
) -> nn.Sequential:
    """The model `vision_learner` trains: `nn.Sequential(body of arch, head)`.

    `load_learner` and `Predictor.load` call it (with `pretrained=False`) to rebuild an
    exported model before loading its weights.

    Args:
        arch: a registered architecture name. n_out: outputs. c_in: input channels (3).
        lin_ftrs, ps, concat_pool, y_range: the head, see `create_head`.
        pretrained, weights: load the body's pretrained weights (False; see `vision_learner`).
        factory: the architecture's factory, when not the registered one (default: by name).
        known_rows: start from the pretrained classifier instead (`known_classes_head`;
            lin_ftrs, concat_pool and y_range do not apply then).
    """
    meta = MODEL_META[model_name(arch)]
    make = MODELS.get(arch) if factory is None or isinstance(factory, str) else factory
    model = make(n_out=1000, c_in=c_in, pretrained=pretrained, weights=weights)
    if known_rows is not None:
        classifier = pretrained_classifier(model, meta.n_features)
        return nn.Sequential(
            create_body(model, meta), known_classes_head(classifier, known_rows, ps)
        )
    low_high = None if y_range is None else (float(y_range[0]), float(y_range[1]))
    head = create_head(meta.n_features, n_out, lin_ftrs, ps, concat_pool, low_high)
    return nn.Sequential(create_body(model, meta), head)


__all__ = [
    "AdaptiveConcatPool2d",
    "build_vision_model",
    "create_body",
    "create_head",
    "known_classes_head",
    "model_name",
    "pretrained_classifier",
]
