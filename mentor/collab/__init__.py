"""Collaborative filtering: ratings as index batches, dot-product and MLP models, a learner.

Public names load lazily (see `mentor.core.lazy`).
"""

from typing import TYPE_CHECKING

from mentor.core.lazy import attach

if TYPE_CHECKING:
    from mentor.collab.data import UNKNOWN, CollabDataLoaders, encode_values
    from mentor.collab.interpret import ItemFactorPCA, item_factor_pca
    from mentor.collab.learner import collab_learner
    from mentor.collab.model import EmbeddingDotBias, EmbeddingNN
else:  # a type checker reads the imports above; Python loads each name on first use
    __getattr__, __dir__, __all__ = attach(
        __name__,
        {
            "mentor.collab.data": (
                "UNKNOWN",
                "CollabDataLoaders",
                "encode_values",
            ),
            "mentor.collab.interpret": (
                "ItemFactorPCA",
                "item_factor_pca",
            ),
            "mentor.collab.learner": ("collab_learner",),
            "mentor.collab.model": (
                "EmbeddingDotBias",
                "EmbeddingNN",
            ),
        },
        submodules=("data", "interpret", "learner", "model"),
    )
