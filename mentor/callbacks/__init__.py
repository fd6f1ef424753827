"""Layer 5: optional callbacks (lr finder, mixed precision, channels last, gradients,
trackers and ReduceLROnPlateau, weight averaging (EMA, SWA), loggers and TensorBoard, hooks
and activation statistics, LSUV, MixUp and CutMix).

Public names load lazily (see `mentor.core.lazy`).
"""

from typing import TYPE_CHECKING

from mentor.core.lazy import attach

if TYPE_CHECKING:
    from mentor.callbacks.averaging import EMA, SWA, update_bn
    from mentor.callbacks.csv_logger import CSVLogger
    from mentor.callbacks.gradients import GradientAccumulation, GradientClip
    from mentor.callbacks.hooks import (
        ActivationStats,
        Hook,
        Hooks,
        LayerStats,
        hook_output,
        hook_outputs,
    )
    from mentor.callbacks.lr_finder import (
        LRFinder,
        SuggestedLRs,
        lr_find,
        minimum,
        slide,
        steep,
        valley,
    )
    from mentor.callbacks.lsuv import LSUVCallback
    from mentor.callbacks.memory_format import ChannelsLast
    from mentor.callbacks.mixed_precision import MixedPrecision
    from mentor.callbacks.mixup import CutMix, MixHandler, MixUp
    from mentor.callbacks.tensorboard import TensorBoardCallback
    from mentor.callbacks.tracker import (
        EarlyStoppingCallback,
        ReduceLROnPlateau,
        SaveModelCallback,
        TrackerCallback,
    )
else:  # a type checker reads the imports above; Python loads each name on first use
    __getattr__, __dir__, __all__ = attach(
        __name__,
        {
            "mentor.callbacks.averaging": ("EMA", "SWA", "update_bn"),
            "mentor.callbacks.csv_logger": ("CSVLogger",),
            "mentor.callbacks.gradients": (
                "GradientAccumulation",
                "GradientClip",
            ),
            "mentor.callbacks.hooks": (
                "ActivationStats",
                "Hook",
                "Hooks",
                "LayerStats",
                "hook_output",
                "hook_outputs",
            ),
            "mentor.callbacks.lr_finder": (
                "LRFinder",
                "SuggestedLRs",
                "lr_find",
                "minimum",
                "slide",
                "steep",
                "valley",
            ),
            "mentor.callbacks.lsuv": ("LSUVCallback",),
            "mentor.callbacks.memory_format": ("ChannelsLast",),
            "mentor.callbacks.mixed_precision": ("MixedPrecision",),
            "mentor.callbacks.mixup": ("CutMix", "MixHandler", "MixUp"),
            "mentor.callbacks.tensorboard": ("TensorBoardCallback",),
            "mentor.callbacks.tracker": (
                "EarlyStoppingCallback",
                "ReduceLROnPlateau",
                "SaveModelCallback",
                "TrackerCallback",
            ),
        },
        submodules=(
            "averaging",
            "csv_logger",
            "gradients",
            "hooks",
            "lr_finder",
            "lsuv",
            "memory_format",
            "mixed_precision",
            "mixup",
            "tensorboard",
            "tracker",
        ),
    )
