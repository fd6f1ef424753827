"""Tabular application: preprocessing (more to come: loaders, model, learner)."""

from mentor.tabular.dates import add_datepart, add_elapsed_times, parse_dates
from mentor.tabular.preprocess import (
    Categorify,
    FillMissing,
    Normalize,
    ProcessedFrame,
    TabularPreprocessor,
    cont_cat_split,
)

__all__ = [
    "Categorify",
    "FillMissing",
    "Normalize",
    "ProcessedFrame",
    "TabularPreprocessor",
    "add_datepart",
    "add_elapsed_times",
    "cont_cat_split",
    "parse_dates",
]
