"""Vision architectures (ResNet, ResNeXt, XResNet), building blocks and model metadata.

Importing this package registers every architecture with `mentor.core.registry`, so
`create_model("resnet34", n_out=10)` works after `import mentor.vision.models`; the registry's
functions are re-exported here, so `from mentor import create_model` (loaded lazily from this
package) always sees the built-in architectures.
"""

from mentor.core.registry import create_model, list_models, register_model
from mentor.vision.models.efficientnet import (
    efficientnet_lite0,
    efficientnet_lite1,
    efficientnet_lite2,
)
from mentor.vision.models.layers import ConvLayer, ResBlock, simple_cnn
from mentor.vision.models.resnet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    RESNET_META,
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
from mentor.vision.models.xresnet import XRESNET_META, XResNet, xresnet18, xresnet34, xresnet50

EFFICIENTNET_META = {
    # body: stem, blocks, head conv, bn, act; then pool, dropout, fc. Weights expect [-1, 1].
    # Batch statistics of small fine-tuning batches pulled the running statistics away from
    # the pretrained ones: imagenette at 160 px scored 92.8% after fine_tune(2) with them
    # training, 96.2% with them fixed (as Keras advises for EfficientNet).
    name: ModelMeta(
        cut=-3, n_features=1280, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), fixed_bn_stats=True
    )
    for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
}
MODEL_META: dict[str, ModelMeta] = {**RESNET_META, **XRESNET_META, **EFFICIENTNET_META}


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
    "EFFICIENTNET_META",
    "create_model",
    "list_models",
    "register_model",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODEL_META",
    "RESNET_META",
    "XRESNET_META",
    "BasicBlock",
    "Bottleneck",
    "ConvLayer",
    "ModelMeta",
    "ResBlock",
    "ResNet",
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
    "xresnet18",
    "xresnet34",
    "xresnet50",
]
