"""Tabular application: preprocessing, `TabularDataLoaders`, `TabularModel`, `tabular_learner`."""

from mentor.tabular.data import TabularData, TabularDataLoaders, TabularTestLoader
from mentor.tabular.dates import add_datepart, add_elapsed_times, parse_dates
from mentor.tabular.learner import tabular_learner
from mentor.tabular.model import TabularModel, course_emb_sz_rule, emb_sz_rule, get_emb_sz
from mentor.tabular.preprocess import (
    Categorify,
    FillMissing,
    Normalize,
    ProcessedFrame,
    TabularPreprocessor,
    cont_cat_split,
)
from mentor.tabular.target import TabularTarget

__all__ = [
    "Categorify",
    "FillMissing",
    "Normalize",
    "ProcessedFrame",
    "TabularData",
    "TabularDataLoaders",
    "TabularModel",
    "TabularPreprocessor",
    "TabularTarget",
    "TabularTestLoader",
    "add_datepart",
    "add_elapsed_times",
    "cont_cat_split",
    "course_emb_sz_rule",
    "emb_sz_rule",
    "get_emb_sz",
    "parse_dates",
    "tabular_learner",
]
