"""Layer 5: optional callbacks (lr finder, mixed precision, channels last, gradients,
trackers, loggers, hooks and activation statistics)."""

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
from mentor.callbacks.memory_format import ChannelsLast
from mentor.callbacks.mixed_precision import MixedPrecision
from mentor.callbacks.tracker import EarlyStoppingCallback, SaveModelCallback, TrackerCallback

__all__ = [
    "ActivationStats",
    "ChannelsLast",
    "CSVLogger",
    "EarlyStoppingCallback",
    "GradientAccumulation",
    "GradientClip",
    "Hook",
    "Hooks",
    "LayerStats",
    "LRFinder",
    "MixedPrecision",
    "SaveModelCallback",
    "SuggestedLRs",
    "TrackerCallback",
    "hook_output",
    "hook_outputs",
    "lr_find",
    "minimum",
    "slide",
    "steep",
    "valley",
]
