"""Collaborative filtering: ratings as index batches, dot-product and MLP models, a learner."""

from mentor.collab.data import UNKNOWN, CollabDataLoaders, encode_values
from mentor.collab.interpret import ItemFactorPCA, item_factor_pca
from mentor.collab.learner import collab_learner
from mentor.collab.model import EmbeddingDotBias, EmbeddingNN

__all__ = [
    "UNKNOWN",
    "CollabDataLoaders",
    "EmbeddingDotBias",
    "EmbeddingNN",
    "ItemFactorPCA",
    "collab_learner",
    "encode_values",
    "item_factor_pca",
]
