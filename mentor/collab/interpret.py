"""What a collaborative-filtering model learned: principal components of its item factors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mentor.collab.model import EmbeddingDotBias
from mentor.train.learner import Learner


@dataclass
class ItemFactorPCA:
    """Principal components of item factors.

    Attributes:
        items: the item names, in the order of the rows of `coords`.
        coords: `[n_items, n_components]` coordinates of each item on each component.
        explained: `[n_components]` fraction of the factors' variance each component explains.
        ranked: per component, the item names sorted by coordinate, highest first.
    """

    items: list[Any]
    coords: Tensor
    explained: Tensor
    ranked: list[list[Any]]


def item_factor_pca(
    learn: Learner, n_components: int = 3, items: Sequence[Any] | None = None
) -> ItemFactorPCA:
    """The top principal components of the item factors of a dot-product `collab_learner`.

    The factors (of `items`, or of every known item) are centered and decomposed with an SVD;
    the sign of each component is arbitrary, as with any PCA.

    Args:
        learn: a `Learner` whose model is an `EmbeddingDotBias` with `classes`.
        n_components: how many components (3).
        items: item names to analyse, e.g. the most-rated ones (None: all known items).

    Example:
        >>> pca = item_factor_pca(learn, 3, items=top_movies)
        >>> pca.ranked[0][:10]  # the ten items highest on the first component
    """
    model = learn.model
    if not isinstance(model, EmbeddingDotBias) or model.classes is None:
        raise TypeError(
            f"item_factor_pca needs an EmbeddingDotBias with classes, got "
            f"{type(model).__name__}; use collab_learner(dls) without use_nn"
        )
    names = list(model.classes[1][1:]) if items is None else list(items)
    factors = model.weight(names).float().cpu()
    max_components = min(factors.shape)
    if not 1 <= n_components <= max_components:
        raise ValueError(
            f"n_components={n_components} must be between 1 and {max_components} "
            f"(the number of items and of factors)"
        )
    centered = factors - factors.mean(dim=0, keepdim=True)
    _, singular, vh = torch.linalg.svd(centered, full_matrices=False)
    coords = centered @ vh[:n_components].T
    variance = singular.square()
    explained = variance[:n_components] / variance.sum().clamp_min(1e-12)
    ranked = [
        [names[i] for i in coords[:, c].argsort(descending=True).tolist()]
        for c in range(n_components)
    ]
    return ItemFactorPCA(names, coords, explained, ranked)


__all__ = ["ItemFactorPCA", "item_factor_pca"]
