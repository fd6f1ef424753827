"""Layer 5: optional callbacks (lr finder, mixed precision, gradients, trackers, loggers)."""

from mentor.callbacks.csv_logger import CSVLogger
from mentor.callbacks.gradients import GradientAccumulation, GradientClip
from mentor.callbacks.lr_finder import (
    LRFinder,
    SuggestedLRs,
    lr_find,
    minimum,
    slide,
    steep,
    valley,
)
from mentor.callbacks.mixed_precision import MixedPrecision
from mentor.callbacks.tracker import EarlyStoppingCallback, SaveModelCallback, TrackerCallback

__all__ = [
    "CSVLogger",
    "EarlyStoppingCallback",
    "GradientAccumulation",
    "GradientClip",
    "LRFinder",
    "MixedPrecision",
    "SaveModelCallback",
    "SuggestedLRs",
    "TrackerCallback",
    "lr_find",
    "minimum",
    "slide",
    "steep",
    "valley",
]
