"""Tabular application: preprocessing, `TabularDataLoaders`, `TabularModel`, `tabular_learner`.

Public names load lazily (see `mentor.core.lazy`).
"""

from typing import TYPE_CHECKING

from mentor.core.lazy import attach

if TYPE_CHECKING:
    from mentor.tabular.data import TabularData, TabularDataLoaders, TabularTestLoader
    from mentor.tabular.dates import add_datepart, add_elapsed_times, parse_dates
    from mentor.tabular.learner import tabular_config, tabular_learner
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
else:  # a type checker reads the imports above; Python loads each name on first use
    __getattr__, __dir__, __all__ = attach(
        __name__,
        {
            "mentor.tabular.data": (
                "TabularData",
                "TabularDataLoaders",
                "TabularTestLoader",
            ),
            "mentor.tabular.dates": (
                "add_datepart",
                "add_elapsed_times",
                "parse_dates",
            ),
            "mentor.tabular.learner": ("tabular_config", "tabular_learner"),
            "mentor.tabular.model": (
                "TabularModel",
                "course_emb_sz_rule",
                "emb_sz_rule",
                "get_emb_sz",
            ),
            "mentor.tabular.preprocess": (
                "Categorify",
                "FillMissing",
                "Normalize",
                "ProcessedFrame",
                "TabularPreprocessor",
                "cont_cat_split",
            ),
            "mentor.tabular.target": ("TabularTarget",),
        },
        submodules=("data", "dates", "learner", "model", "preprocess", "procs", "target"),
    )
