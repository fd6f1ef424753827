"""Vision architectures (ResNet, ResNeXt, XResNet), building blocks and model metadata.

Importing this package registers every architecture with `mentor.core.registry`, so
`create_model("resnet34", n_out=10)` works after `import mentor.vision.models`; the registry's
functions are re-exported here, so `from mentor import create_model` (loaded lazily from this
package) always sees the built-in architectures.
"""

from typing import Any

from mentor.core.registry import MODELS, create_model, list_models, register_model
from mentor.vision.models.efficientnet import (
    efficientnet_lite0,
    efficientnet_lite1,
    efficientnet_lite2,
)
from mentor.vision.models.layers import ConvLayer, ResBlock, simple_cnn
from mentor.vision.models.resnet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    BasicBlock,
    Bottleneck,
    ModelMeta,
    ResNet,
    load_checkpoint,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
)
from mentor.vision.models.small import SMALL_IMAGE, small_cnn
from mentor.vision.models.unet import DynamicUnet, unet_model, unet_splitter
from mentor.vision.models.xresnet import XResNet, xresnet18, xresnet34, xresnet50

MODEL_META: dict[str, Any] = MODELS.meta
"""The model registry's metadata: each registered architecture's `ModelMeta` (where
`vision_learner` cuts it, its body's channels, the statistics its weights expect). The
registry's own table, so an architecture a user registers with `meta=` is here too."""


def body_and_features(model_name: str) -> tuple[int, int]:
    """Where to cut model `model_name` into body and head, and the body's output channels.

    Returns `(cut, n_features)`: the body is `list(model.children())[:cut]`.

    Example:
        >>> body_and_features("resnet34")
        (-2, 512)
    """
    if model_name not in MODEL_META:
        known = ", ".join(sorted(MODEL_META))
        raise KeyError(f"no metadata for model {model_name!r}; models with metadata: {known}")
    meta = MODEL_META[model_name]
    return meta.cut, meta.n_features


__all__ = [
    "create_model",
    "list_models",
    "register_model",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODEL_META",
    "BasicBlock",
    "Bottleneck",
    "ConvLayer",
    "ModelMeta",
    "ResBlock",
    "ResNet",
    "DynamicUnet",
    "XResNet",
    "body_and_features",
    "load_checkpoint",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "simple_cnn",
    "small_cnn",
    "SMALL_IMAGE",
    "unet_model",
    "unet_splitter",
    "xresnet18",
    "xresnet34",
    "xresnet50",
]
