"""Tabular application: preprocessing (more to come: loaders, model, learner)."""

from mentor.tabular.dates import add_datepart, add_elapsed_times, parse_dates
from mentor.tabular.model import TabularModel, course_emb_sz_rule, emb_sz_rule, get_emb_sz
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
    "TabularModel",
    "TabularPreprocessor",
    "add_datepart",
    "add_elapsed_times",
    "cont_cat_split",
    "course_emb_sz_rule",
    "emb_sz_rule",
    "get_emb_sz",
    "parse_dates",
]
