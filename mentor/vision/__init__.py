"""Layer 6: computer vision: image blocks and loaders, item transforms, batch augmentation,
architectures (importing this package registers them for `create_model`).

Public names load lazily (see `mentor.core.lazy`).
"""

from typing import TYPE_CHECKING

from mentor.core.lazy import attach

if TYPE_CHECKING:
    from mentor.core.layers import SigmoidRange
    from mentor.vision.augment import (
        AffineWarp,
        Dihedral,
        Flip,
        Rotate,
        Warp,
        Zoom,
        aug_transforms,
    )
    from mentor.vision.blocks import ImageBlock, MaskBlock, PointBlock
    from mentor.vision.crappifier import crappify, crappify_folder
    from mentor.vision.data import ImageDataLoaders, SegmentationDataLoaders, image_stats
    from mentor.vision.download import ImageDownloads, download_images
    from mentor.vision.erasing import RandomErasing
    from mentor.vision.feature_loss import FeatureLoss, LossMetrics
    from mentor.vision.gan import (
        GANLoss,
        GANModule,
        bce_crit_loss,
        bce_gen_loss,
        gan_loss_from_func,
        wgan_crit_loss,
        wgan_gen_loss,
    )
    from mentor.vision.gan_data import GANDataLoaders, save_image_grid
    from mentor.vision.gan_learner import GANLearner, adam_no_momentum
    from mentor.vision.gan_trainer import AdaptiveGANSwitcher, FixedGANSwitcher, GANTrainer
    from mentor.vision.image import (
        BadImageError,
        ConvertMode,
        open_image,
        open_mask,
        verify_images,
    )
    from mentor.vision.image_metrics import PSNR, SSIM
    from mentor.vision.interpret import ClassificationInterpretation, grad_cam, show_heatmap
    from mentor.vision.learner import (
        RestorationLearner,
        VisionLearner,
        unet_learner,
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
    from mentor.vision.models.critic import basic_critic, gan_critic
    from mentor.vision.models.generator import basic_generator, generate_noise
    from mentor.vision.models.head import AdaptiveConcatPool2d, create_head, known_classes_head
    from mentor.vision.resize import CenterCrop, RandomResizedCrop, Resize
    from mentor.vision.seg_interpret import SegmentationInterpretation
else:  # a type checker reads the imports above; Python loads each name on first use
    __getattr__, __dir__, __all__ = attach(
        __name__,
        {
            "mentor.vision.augment": (
                "AffineWarp",
                "Dihedral",
                "Flip",
                "Rotate",
                "Warp",
                "Zoom",
                "aug_transforms",
            ),
            "mentor.vision.blocks": ("ImageBlock", "MaskBlock", "PointBlock"),
            "mentor.vision.crappifier": ("crappify", "crappify_folder"),
            "mentor.vision.data": ("ImageDataLoaders", "SegmentationDataLoaders", "image_stats"),
            "mentor.vision.download": ("ImageDownloads", "download_images"),
            "mentor.vision.feature_loss": ("FeatureLoss", "LossMetrics"),
            "mentor.vision.gan": (
                "GANLoss",
                "GANModule",
                "bce_crit_loss",
                "bce_gen_loss",
                "gan_loss_from_func",
                "wgan_crit_loss",
                "wgan_gen_loss",
            ),
            "mentor.vision.gan_data": ("GANDataLoaders", "save_image_grid"),
            "mentor.vision.gan_learner": ("GANLearner", "adam_no_momentum"),
            "mentor.vision.gan_trainer": ("AdaptiveGANSwitcher", "FixedGANSwitcher", "GANTrainer"),
            "mentor.vision.models.critic": ("basic_critic", "gan_critic"),
            "mentor.vision.models.generator": ("basic_generator", "generate_noise"),
            "mentor.vision.image": (
                "BadImageError",
                "ConvertMode",
                "open_image",
                "open_mask",
                "verify_images",
            ),
            "mentor.vision.image_metrics": ("PSNR", "SSIM"),
            "mentor.vision.interpret": (
                "ClassificationInterpretation",
                "grad_cam",
                "show_heatmap",
            ),
            "mentor.core.layers": ("SigmoidRange",),
            "mentor.vision.learner": (
                "RestorationLearner",
                "VisionLearner",
                "unet_learner",
                "vision_learner",
            ),
            "mentor.vision.seg_interpret": ("SegmentationInterpretation",),
            "mentor.vision.models.head": (
                "AdaptiveConcatPool2d",
                "create_head",
                "known_classes_head",
            ),
            "mentor.vision.erasing": ("RandomErasing",),
            "mentor.vision.lighting": (
                "Brightness",
                "Contrast",
                "Lighting",
            ),
            "mentor.vision.models": (
                "MODEL_META",
                "ConvLayer",
                "ResBlock",
                "body_and_features",
                "simple_cnn",
            ),
            "mentor.vision.resize": (
                "CenterCrop",
                "RandomResizedCrop",
                "Resize",
            ),
        },
        submodules=(
            "augment",
            "data",
            "download",
            "erasing",
            "feature_loss",
            "image",
            "interpret",
            "learner",
            "lighting",
            "models",
            "precompute",
            "resize",
            "weights",
        ),
    )
