"""Layer 6: computer vision: image blocks and loaders, item transforms, batch augmentation,
architectures (importing this package registers them for `create_model`)."""

from mentor.vision.augment import (
    AffineWarp,
    Dihedral,
    Flip,
    Rotate,
    Warp,
    Zoom,
    aug_transforms,
)
from mentor.vision.data import ImageBlock, ImageDataLoaders, MaskBlock, PointBlock, image_stats
from mentor.vision.image import (
    BadImageError,
    ConvertMode,
    open_image,
    open_mask,
    verify_images,
)
from mentor.vision.interpret import ClassificationInterpretation, grad_cam, show_heatmap
from mentor.vision.learner import (
    AdaptiveConcatPool2d,
    SigmoidRange,
    VisionLearner,
    create_head,
    known_classes_head,
    vision_learner,
)
from mentor.vision.lighting import Brightness, Contrast, Lighting
from mentor.vision.models import (
    MODEL_META,
    ConvLayer,
    ResBlock,
    body_and_features,
    simple_cnn,
)
from mentor.vision.resize import CenterCrop, RandomResizedCrop, Resize

__all__ = [
    "AdaptiveConcatPool2d",
    "SigmoidRange",
    "VisionLearner",
    "create_head",
    "known_classes_head",
    "vision_learner",
    "ClassificationInterpretation",
    "grad_cam",
    "show_heatmap",
    "MODEL_META",
    "ConvLayer",
    "ResBlock",
    "body_and_features",
    "simple_cnn",
    "AffineWarp",
    "BadImageError",
    "Brightness",
    "CenterCrop",
    "Contrast",
    "ConvertMode",
    "Dihedral",
    "Flip",
    "ImageBlock",
    "ImageDataLoaders",
    "Lighting",
    "MaskBlock",
    "PointBlock",
    "RandomResizedCrop",
    "Resize",
    "Rotate",
    "Warp",
    "Zoom",
    "aug_transforms",
    "image_stats",
    "open_image",
    "open_mask",
    "verify_images",
]
